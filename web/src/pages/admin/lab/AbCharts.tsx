import { lazy } from 'react';
import { ChartFigure } from '../../dashboard/ChartFigure';
import type { SeriesPoint } from './api';

const ArmsChart = lazy(() => import('./charts').then((m) => ({ default: m.ArmsChart })));

function last(data: SeriesPoint[], key: keyof SeriesPoint): number | undefined {
  for (let i = data.length - 1; i >= 0; i -= 1) {
    const v = data[i]?.[key];
    if (typeof v === 'number') return v;
  }
  return undefined;
}

/** Side-by-side series of an A/B test: hourly cost, cumulative interruptions, capacity changes. */
export function AbCharts({ data, modelA, modelB }: { data: SeriesPoint[]; modelA: string; modelB: string }) {
  const labelA = `A: ${modelA}`;
  const labelB = `B: ${modelB}`;
  const costA = last(data, 'costA');
  const costB = last(data, 'costB');
  const fmt = (v: number | undefined) => (v === undefined ? '—' : `$${v.toFixed(3)}/h`);
  return (
    <div className="lab-charts">
      <ChartFigure label="Hourly cost of each set" summary={`Hourly cost now: A ${fmt(costA)}, B ${fmt(costB)}`} height={200}>
        <ArmsChart data={data} keyA="costA" keyB="costB" unit="$" labelA={labelA} labelB={labelB} />
      </ChartFigure>
      <ChartFigure
        label="Interruptions of each set"
        summary={`Interruptions so far: A ${last(data, 'interruptionsA') ?? 0}, B ${last(data, 'interruptionsB') ?? 0}`}
        height={200}
      >
        <ArmsChart data={data} keyA="interruptionsA" keyB="interruptionsB" unit="" labelA={labelA} labelB={labelB} />
      </ChartFigure>
      <ChartFigure label="Decisions that changed capacity, per tick" summary="Moves and replacements each model made per tick" height={200}>
        <ArmsChart data={data} keyA="decisionsA" keyB="decisionsB" unit="" labelA={labelA} labelB={labelB} />
      </ChartFigure>
    </div>
  );
}
