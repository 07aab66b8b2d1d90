import type { FleetSlice, GapPoint, SavingsPoint } from '../../api/types';
import { formatCores, formatMemory } from '../../lib/format';

const compactUsd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', notation: 'compact', maximumFractionDigits: 1 });
const dayLabel = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const hourLabel = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullLabel = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** Axis labels: "$1.2K". */
export function formatUsdCompact(amount: number): string {
  return compactUsd.format(amount);
}

/** Time-axis tick: hours for a one-day window, dates otherwise. */
export function timeTick(days: number): (ms: number) => string {
  return (ms) => (days <= 1 ? hourLabel : dayLabel).format(new Date(ms));
}

export function formatWhen(ms: number): string {
  return fullLabel.format(new Date(ms));
}

export interface SavingsDatum {
  t: number;
  baseline: number;
  actual: number;
  percent: number;
}

export function savingsData(points: SavingsPoint[]): SavingsDatum[] {
  return points
    .map((point) => ({
      t: Date.parse(point.at),
      baseline: point.on_demand_baseline_hourly,
      actual: point.actual_hourly,
      percent: point.savings_percent,
    }))
    .filter((datum) => !Number.isNaN(datum.t));
}

export const mean = (values: number[]) => (values.length === 0 ? 0 : values.reduce((sum, value) => sum + value, 0) / values.length);

export type Resource = 'cpu' | 'memory';

export interface GapDatum {
  t: number;
  capacity: number;
  requested: number;
  used: number;
}

/** Chart values: vCPU for CPU, GiB for memory. */
export function gapData(points: GapPoint[], resource: Resource): GapDatum[] {
  return points
    .map((point) =>
      resource === 'cpu'
        ? {
            t: Date.parse(point.at),
            capacity: point.cpu_capacity_millicores / 1000,
            requested: point.cpu_requested_millicores / 1000,
            used: point.cpu_used_millicores / 1000,
          }
        : {
            t: Date.parse(point.at),
            capacity: point.memory_capacity_mib / 1024,
            requested: point.memory_requested_mib / 1024,
            used: point.memory_used_mib / 1024,
          },
    )
    .filter((datum) => !Number.isNaN(datum.t));
}

/** A chart value back in the resource's usual unit ("12.5 vCPU", "48 GiB"). */
export function formatResource(value: number, resource: Resource): string {
  return resource === 'cpu' ? `${formatCores(value * 1000)} vCPU` : formatMemory(value * 1024);
}

const LIFECYCLE_LABEL: Record<string, string> = { spot: 'Spot', 'on-demand': 'On-Demand' };

export function lifecycleName(lifecycle: string): string {
  return LIFECYCLE_LABEL[lifecycle] ?? lifecycle;
}

// Spot in greens, On-Demand in blues, anything else in greys; darker for bigger families.
const PALETTES: Record<string, string[]> = {
  spot: ['#067647', '#079455', '#17b26a', '#47cd89', '#75e0a7', '#abefc6'],
  'on-demand': ['#1849a9', '#1570ef', '#2e90fa', '#53b1fd', '#84caff', '#b2ddff'],
};
const OTHER_PALETTE = ['#475467', '#667085', '#98a2b3', '#d0d5dd'];

export function lifecycleColor(lifecycle: string): string {
  return (PALETTES[lifecycle] ?? OTHER_PALETTE)[1] as string;
}

export function familyColor(lifecycle: string, index: number): string {
  const palette = PALETTES[lifecycle] ?? OTHER_PALETTE;
  return palette[index % palette.length] as string;
}

export interface LifecycleGroup {
  lifecycle: string;
  instances: number;
  monthlyCost: number;
  /** Biggest family first. */
  families: FleetSlice[];
}

/** Slices grouped by lifecycle (Spot first, then On-Demand, then the rest), families by size. */
export function groupFleet(slices: FleetSlice[]): LifecycleGroup[] {
  const groups = new Map<string, LifecycleGroup>();
  for (const slice of slices) {
    const group = groups.get(slice.lifecycle) ?? { lifecycle: slice.lifecycle, instances: 0, monthlyCost: 0, families: [] };
    group.instances += slice.instances;
    group.monthlyCost += slice.monthly_cost;
    group.families.push(slice);
    groups.set(slice.lifecycle, group);
  }
  const rank = (lifecycle: string) => ['spot', 'on-demand'].indexOf(lifecycle) >>> 0;
  return [...groups.values()]
    .map((group) => ({ ...group, families: [...group.families].sort((a, b) => b.instances - a.instances || b.monthly_cost - a.monthly_cost) }))
    .sort((a, b) => rank(a.lifecycle) - rank(b.lifecycle) || a.lifecycle.localeCompare(b.lifecycle));
}

const COMPONENT_LABEL: Record<string, string> = {
  spot_stability: 'Spot stability',
  resource_pressure: 'Resource pressure',
  control_plane: 'Control-plane freshness',
};

export function stabilityComponentName(name: string): string {
  return COMPONENT_LABEL[name] ?? name.replace(/_/g, ' ').replace(/^\w/, (first) => first.toUpperCase());
}
