// Loaded on demand (recharts is most of the bundle): import these through ChartFigure.tsx.
import { Area, AreaChart, CartesianGrid, Cell, Legend, Line, Pie, PieChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { LifecycleGroup, GapDatum, Resource, SavingsDatum } from './format';
import { familyColor, formatResource, formatUsdCompact, formatWhen, lifecycleColor, lifecycleName, timeTick } from './format';
import { formatUsd, formatUsdCents } from '../../lib/format';

const COLORS = {
  grid: '#eaecf0',
  axis: '#98a2b3',
  baseline: '#667085',
  savings: '#d1fadf',
  actual: '#4f46e5',
  actualFill: '#e0e7ff',
  capacity: '#d92d20',
  capacityFill: '#fee4e2',
  requested: '#079455',
  requestedFill: '#d1fadf',
  used: '#475467',
};

const AXIS_TICK = { fontSize: 12, fill: COLORS.axis };

interface TooltipRow {
  label: string;
  value: string;
  color?: string;
}

function TooltipBox({ title, rows }: { title: string; rows: TooltipRow[] }) {
  return (
    <div className="chart-tooltip">
      <div className="chart-tooltip__title">{title}</div>
      {rows.map((row) => (
        <div key={row.label} className="chart-tooltip__row">
          {row.color !== undefined && <span className="chart-tooltip__swatch" style={{ background: row.color }} />}
          <span>{row.label}</span>
          <strong>{row.value}</strong>
        </div>
      ))}
    </div>
  );
}

/** The datum under the pointer, from recharts' tooltip payload. */
function hovered<T>(active: boolean | undefined, payload: readonly { payload?: unknown }[] | undefined): T | null {
  if (!active || !payload || payload.length === 0) return null;
  return (payload[0]?.payload as T | undefined) ?? null;
}

/** The time axis both series charts share. */
function timeAxis(days: number) {
  return {
    dataKey: 't',
    type: 'number' as const,
    scale: 'time' as const,
    domain: ['dataMin', 'dataMax'] as [string, string],
    tickFormatter: timeTick(days),
    tick: AXIS_TICK,
    tickLine: false,
    axisLine: { stroke: COLORS.grid },
    minTickGap: 40,
  };
}

export function SavingsChart({ data, days }: { data: SavingsDatum[]; days: number }) {
  return (
    <ResponsiveContainer width="100%" height="100%">
      <AreaChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 0 }} accessibilityLayer={false}>
        <CartesianGrid stroke={COLORS.grid} vertical={false} />
        <XAxis {...timeAxis(days)} />
        <YAxis tickFormatter={(value: number) => formatUsdCompact(value)} tick={AXIS_TICK} tickLine={false} axisLine={false} width={56} />
        <Tooltip
          content={({ active, payload }) => {
            const datum = hovered<SavingsDatum>(active, payload);
            if (!datum) return null;
            return (
              <TooltipBox
                title={formatWhen(datum.t)}
                rows={[
                  { label: 'On-Demand baseline', value: `${formatUsdCents(datum.baseline)}/h`, color: COLORS.baseline },
                  { label: 'Actual', value: `${formatUsdCents(datum.actual)}/h`, color: COLORS.actual },
                  { label: 'Savings', value: `${datum.percent.toFixed(1)}%` },
                ]}
              />
            );
          }}
        />
        <Legend verticalAlign="top" align="right" height={28} iconType="plainline" wrapperStyle={{ fontSize: 12 }} />
        <Area
          type="monotone"
          dataKey="baseline"
          name="On-Demand baseline"
          stroke={COLORS.baseline}
          strokeDasharray="5 4"
          strokeWidth={1.5}
          fill={COLORS.savings}
          fillOpacity={1}
          isAnimationActive={false}
        />
        <Area
          type="monotone"
          dataKey="actual"
          name="Actual cost"
          stroke={COLORS.actual}
          strokeWidth={2}
          fill={COLORS.actualFill}
          fillOpacity={1}
          isAnimationActive={false}
        />
      </AreaChart>
    </ResponsiveContainer>
  );
}

export function ResourceGapChart({ data, days, resource }: { data: GapDatum[]; days: number; resource: Resource }) {
  const format = (value: number) => formatResource(value, resource);
  return (
    <ResponsiveContainer width="100%" height="100%">
      <AreaChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 0 }} accessibilityLayer={false}>
        <CartesianGrid stroke={COLORS.grid} vertical={false} />
        <XAxis {...timeAxis(days)} />
        <YAxis
          tickFormatter={(value: number) => value.toLocaleString(undefined, { maximumFractionDigits: 0 })}
          tick={AXIS_TICK}
          tickLine={false}
          axisLine={false}
          width={48}
          label={{ value: resource === 'cpu' ? 'vCPU' : 'GiB', angle: -90, position: 'insideLeft', style: { fontSize: 12, fill: COLORS.axis } }}
        />
        <Tooltip
          content={({ active, payload }) => {
            const datum = hovered<GapDatum>(active, payload);
            if (!datum) return null;
            return (
              <TooltipBox
                title={formatWhen(datum.t)}
                rows={[
                  { label: 'Capacity', value: format(datum.capacity), color: COLORS.capacity },
                  { label: 'Requested', value: format(datum.requested), color: COLORS.requested },
                  { label: 'Used', value: format(datum.used), color: COLORS.used },
                ]}
              />
            );
          }}
        />
        <Legend verticalAlign="top" align="right" height={28} iconType="plainline" wrapperStyle={{ fontSize: 12 }} />
        <Area
          type="stepAfter"
          dataKey="capacity"
          name="Capacity"
          stroke={COLORS.capacity}
          strokeWidth={2}
          fill={COLORS.capacityFill}
          fillOpacity={1}
          isAnimationActive={false}
        />
        <Area
          type="stepAfter"
          dataKey="requested"
          name="Requested"
          stroke={COLORS.requested}
          strokeWidth={2}
          fill={COLORS.requestedFill}
          fillOpacity={1}
          isAnimationActive={false}
        />
        <Line type="monotone" dataKey="used" name="Used" stroke={COLORS.used} strokeDasharray="4 3" strokeWidth={1.5} dot={false} isAnimationActive={false} />
      </AreaChart>
    </ResponsiveContainer>
  );
}

interface FleetDatum {
  name: string;
  instances: number;
  monthlyCost: number;
  color: string;
}

/** Sunburst-style nested pie: lifecycles inside, their instance families around them. */
export function FleetChart({ groups }: { groups: LifecycleGroup[] }) {
  const inner: FleetDatum[] = groups.map((group) => ({
    name: lifecycleName(group.lifecycle),
    instances: group.instances,
    monthlyCost: group.monthlyCost,
    color: lifecycleColor(group.lifecycle),
  }));
  const outer: FleetDatum[] = groups.flatMap((group) =>
    group.families.map((slice, index) => ({
      name: `${slice.family} ${lifecycleName(group.lifecycle)}`,
      instances: slice.instances,
      monthlyCost: slice.monthly_cost,
      color: familyColor(group.lifecycle, index),
    })),
  );
  return (
    <ResponsiveContainer width="100%" height="100%">
      <PieChart accessibilityLayer={false}>
        <Tooltip
          content={({ active, payload }) => {
            const datum = hovered<FleetDatum>(active, payload);
            if (!datum) return null;
            return (
              <TooltipBox
                title={datum.name}
                rows={[
                  { label: 'Instances', value: datum.instances.toLocaleString(), color: datum.color },
                  { label: 'Monthly cost', value: formatUsd(datum.monthlyCost) },
                ]}
              />
            );
          }}
        />
        <Pie data={inner} dataKey="instances" nameKey="name" innerRadius="28%" outerRadius="58%" stroke="#fff" isAnimationActive={false}>
          {inner.map((datum) => (
            <Cell key={datum.name} fill={datum.color} />
          ))}
        </Pie>
        <Pie data={outer} dataKey="instances" nameKey="name" innerRadius="62%" outerRadius="92%" stroke="#fff" isAnimationActive={false}>
          {outer.map((datum) => (
            <Cell key={datum.name} fill={datum.color} />
          ))}
        </Pie>
      </PieChart>
    </ResponsiveContainer>
  );
}
