import type { BadgeTone, SortState } from '../../components';
import type { ClusterSummary, InstanceHistoryEntry } from '../../api/types';

export function gradeTone(grade: string): BadgeTone {
  if (grade === 'A' || grade === 'B') return 'success';
  return grade === 'C' ? 'warning' : 'danger';
}

/** Green from 80, orange from 50, red below. */
export function healthTone(score: number): 'success' | 'warning' | 'danger' {
  if (score >= 80) return 'success';
  return score >= 50 ? 'warning' : 'danger';
}

export function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export interface ClusterFilters {
  q: string;
  environment: string;
  accountId: string;
  /** Monthly run rate above the median of all clusters. */
  highCost: boolean;
  eolOnly: boolean;
}

export function filterClusters(clusters: ClusterSummary[], filters: ClusterFilters): ClusterSummary[] {
  const q = filters.q.trim().toLowerCase();
  const costMedian = median(clusters.map((cluster) => cluster.monthly_run_rate));
  return clusters.filter(
    (cluster) =>
      (q === '' || [cluster.name, cluster.region, cluster.account_name].some((value) => value.toLowerCase().includes(q))) &&
      (filters.environment === '' || cluster.environment === filters.environment) &&
      (filters.accountId === '' || cluster.account_id === filters.accountId) &&
      (!filters.highCost || cluster.monthly_run_rate > costMedian) &&
      (!filters.eolOnly || cluster.end_of_life),
  );
}

/** Sortable columns of the clusters table. */
export const CLUSTER_SORT_KEYS = ['name', 'region', 'version', 'nodes', 'cost', 'efficiency', 'health'] as const;
export type ClusterSortKey = (typeof CLUSTER_SORT_KEYS)[number];

const versionRank = (version: string | null | undefined) =>
  (version ?? '').split('.').reduce((rank, part) => rank * 1000 + (Number.parseInt(part, 10) || 0), 0);

const SORT_VALUE: Record<ClusterSortKey, (cluster: ClusterSummary) => string | number> = {
  name: (cluster) => cluster.name.toLowerCase(),
  region: (cluster) => cluster.region,
  version: (cluster) => versionRank(cluster.kubernetes_version),
  nodes: (cluster) => cluster.node_count,
  cost: (cluster) => cluster.monthly_run_rate,
  // Ungraded clusters sort below F, as on the server.
  efficiency: (cluster) => cluster.efficiency_score ?? -1,
  health: (cluster) => cluster.health_score,
};

export function sortClusters(clusters: ClusterSummary[], sort: SortState): ClusterSummary[] {
  const value = SORT_VALUE[sort.key as ClusterSortKey] ?? SORT_VALUE.name;
  const sign = sort.direction === 'asc' ? 1 : -1;
  return [...clusters].sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    const order = x < y ? -1 : x > y ? 1 : a.name.localeCompare(b.name);
    return order * sign;
  });
}

export type TrendDirection = 'down' | 'up' | 'flat' | 'none';

/**
 * Direction and size of a relative change (-0.12 = 12 % cheaper). Under 10 % keeps one decimal
 * ("4.8%"); a change that would read "0%" counts as flat.
 */
export function costTrend(change: number | null | undefined): { direction: TrendDirection; percent: string } {
  if (change == null || !Number.isFinite(change)) return { direction: 'none', percent: '' };
  const points = Math.abs(change) * 100;
  const shown = points < 9.95 ? Math.round(points * 10) / 10 : Math.round(points);
  if (shown === 0) return { direction: 'flat', percent: '0%' };
  return { direction: change < 0 ? 'down' : 'up', percent: `${shown.toLocaleString('en-US')}%` };
}

export function bandTone(band: string): BadgeTone {
  if (band === 'SAFE') return 'success';
  return band === 'CAUTION' ? 'warning' : 'danger';
}

export function lifecycleTone(lifecycle: string): BadgeTone {
  return lifecycle === 'spot' ? 'success' : 'info';
}

const LIFECYCLE_LABEL: Record<string, string> = { spot: 'Spot', 'on-demand': 'On-Demand' };

export function lifecycleLabel(lifecycle: string): string {
  return LIFECYCLE_LABEL[lifecycle] ?? lifecycle;
}

const HISTORY_KIND: Record<string, { label: string; tone: BadgeTone }> = {
  discovered: { label: 'Discovered', tone: 'info' },
  changed: { label: 'Changed', tone: 'warning' },
  gone: { label: 'Gone', tone: 'neutral' },
};

export function historyKind(kind: string): { label: string; tone: BadgeTone } {
  return HISTORY_KIND[kind] ?? { label: kind, tone: 'neutral' };
}

const str = (value: unknown) => (typeof value === 'string' ? value : undefined);

/** One line describing a history entry's `detail` (shapes written by discovery; unknown ones as JSON). */
export function historyText(entry: InstanceHistoryEntry): string {
  const detail = typeof entry.detail === 'object' && entry.detail !== null ? (entry.detail as Record<string, unknown>) : {};
  if (entry.kind === 'discovered') {
    const type = str(detail.instance_type);
    const lifecycle = str(detail.lifecycle);
    const az = str(detail.az);
    return ['First seen', type && `as ${type}`, lifecycle && lifecycleLabel(lifecycle), az && `in ${az}`].filter(Boolean).join(' ');
  }
  if (entry.kind === 'changed') {
    const changes = Object.entries(detail).flatMap(([field, value]) => {
      if (!Array.isArray(value) || value.length !== 2 || value[0] === value[1]) return [];
      return [`${field} ${String(value[0])} → ${String(value[1])}`];
    });
    if (changes.length > 0) return changes.join('; ');
  }
  if (entry.kind === 'gone') return `No longer reported (${str(detail.state) ?? 'terminated'})`;
  return Object.keys(detail).length > 0 ? JSON.stringify(detail) : '';
}
