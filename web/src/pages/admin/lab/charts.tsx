// Loaded on demand (recharts is most of the bundle): import these through AbCharts.tsx.
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { SeriesPoint } from './api';

export const ARM_COLORS = { a: '#4f46e5', b: '#d97706' };
const AXIS_TICK = { fontSize: 12, fill: '#98a2b3' };

/** One metric of both arms over the ticks. */
export function ArmsChart({ data, keyA, keyB, unit, labelA, labelB }: { data: SeriesPoint[]; keyA: keyof SeriesPoint; keyB: keyof SeriesPoint; unit: string; labelA: string; labelB: string }) {
  return (
    <ResponsiveContainer width="100%" height="100%">
      <LineChart data={data} margin={{ top: 8, right: 16, bottom: 4, left: 0 }}>
        <CartesianGrid stroke="#eaecf0" vertical={false} />
        <XAxis dataKey="tick" tick={AXIS_TICK} tickLine={false} label={{ value: 'tick', position: 'insideBottomRight', offset: -2, fontSize: 11 }} />
        <YAxis tick={AXIS_TICK} tickLine={false} axisLine={false} width={56} unit={unit} />
        <Tooltip />
        <Legend />
        <Line type="monotone" dataKey={keyA} name={labelA} stroke={ARM_COLORS.a} strokeWidth={2} dot={false} isAnimationActive={false} />
        <Line type="monotone" dataKey={keyB} name={labelB} stroke={ARM_COLORS.b} strokeWidth={2} dot={false} isAnimationActive={false} />
      </LineChart>
    </ResponsiveContainer>
  );
}
