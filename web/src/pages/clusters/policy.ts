import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { policyKey } from '../../api/keys';
import type { ClusterPolicyInput } from '../../api/types';

// The JSON `GET /api/clusters/{id}/policy` returns, written out here with its unions (the
// optional disruption limits may arrive as null, and a server older than the planner leaves
// the planner's fields out). `PUT` takes the generated `ClusterPolicyInput`.

export type Aggressiveness = 'conservative' | 'balanced' | 'aggressive';
export type ConsolidationMethod = 'delete_empty' | 'replace_and_move';
export type Architecture = 'x86_64' | 'arm64';
export type CapacityType = 'spot' | 'on_demand' | 'hybrid';
export type AllocationStrategy = 'lowest_price' | 'capacity_optimized';

export interface NodeTemplate {
  allowed_families: string[];
  architectures: Architecture[];
  excluded_sizes: string[];
  capacity_type: CapacityType;
  strategy: AllocationStrategy;
  allow_burstable: boolean;
  on_demand_fallback: boolean;
}

export interface ClusterPolicy {
  aggressiveness: Aggressiveness;
  method: ConsolidationMethod;
  excluded_namespaces: string[];
  stabilization_window_secs: number;
  template: NodeTemplate;
  dry_run: boolean;
  maintenance_mode: boolean;
  /** Rightsizing: recommended request = this usage percentile plus the headroom. */
  rightsize_percentile: RightsizePercentile;
  /** 0.10–0.50. */
  rightsize_headroom: number;
  /** How long a drain waits for PodDisruptionBudgets (5–3600 s); kept as the server sent it. */
  drain_timeout_secs?: number;
  /** How many nodes a plan disrupts at a time. Missing from servers older than the planner. */
  disruption_budget?: DisruptionBudget;
  /** Per-workload floors of on-demand capacity. */
  on_demand_minimums?: OnDemandMinimum[];
  /** Spot offers are weighed at `price × (1 + risk_premium × interruption probability)`; 0–10. */
  risk_premium?: number;
}

/**
 * At most `max_percent` % of the cluster's nodes (at least 1), and at most `max_nodes` when
 * set, are disrupted in one wave; at most `max_waves` waves per plan when set.
 */
export interface DisruptionBudget {
  /** In (0, 100]. */
  max_percent: number;
  max_nodes?: number | null;
  max_waves?: number | null;
}

/**
 * A pod matches when it is in `namespace` (if set) and carries every `selector` label; at
 * least `percent` % (rounded up) or `replicas` of the matching pods, whichever is more, run
 * on on-demand nodes.
 */
export interface OnDemandMinimum {
  namespace?: string | null;
  selector: Record<string, string>;
  /** 0–100. */
  percent?: number | null;
  replicas?: number | null;
}

export const DEFAULT_DISRUPTION_BUDGET: DisruptionBudget = { max_percent: 10, max_nodes: null, max_waves: null };
export const DEFAULT_RISK_PREMIUM = 0.5;

/** `app=api, tier=web` → `{ app: 'api', tier: 'web' }`; null when a part is not `key=value`. */
export function parseSelector(text: string): Record<string, string> | null {
  const selector: Record<string, string> = {};
  for (const part of text.split(',')) {
    const pair = part.trim();
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) return null;
    const key = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (key === '' || /\s/.test(key) || /\s/.test(value)) return null;
    selector[key] = value;
  }
  return selector;
}

/** `{ app: 'api', tier: 'web' }` → `app=api, tier=web`. */
export function formatSelector(selector: Record<string, string> | null | undefined): string {
  return Object.entries(selector ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .join(', ');
}

export type RightsizePercentile = 'p95' | 'p99';

export const PERCENTILES: { value: RightsizePercentile; label: string }[] = [
  { value: 'p95', label: 'p95 of usage' },
  { value: 'p99', label: 'p99 of usage' },
];

export const AGGRESSIVENESS: { value: Aggressiveness; label: string }[] = [
  { value: 'conservative', label: 'Conservative (under 20%)' },
  { value: 'balanced', label: 'Balanced (under 50%)' },
  { value: 'aggressive', label: 'Aggressive (under 80%)' },
];

export const METHODS: { value: ConsolidationMethod; label: string }[] = [
  { value: 'delete_empty', label: 'Delete empty nodes only' },
  { value: 'replace_and_move', label: 'Replace nodes and move pods' },
];

export const ARCHITECTURES: { value: Architecture; label: string }[] = [
  { value: 'x86_64', label: 'x86_64' },
  { value: 'arm64', label: 'arm64 (Graviton)' },
];

export const CAPACITY_TYPES: { value: CapacityType; label: string }[] = [
  { value: 'spot', label: 'Spot' },
  { value: 'on_demand', label: 'On-Demand' },
  { value: 'hybrid', label: 'Hybrid' },
];

export const STRATEGIES: { value: AllocationStrategy; label: string }[] = [
  { value: 'capacity_optimized', label: 'Capacity optimized' },
  { value: 'lowest_price', label: 'Lowest price' },
];

export function useClusterPolicy(clusterId: string) {
  return useQuery({
    queryKey: policyKey(clusterId),
    queryFn: async () => (await unwrap(api.GET('/api/clusters/{id}/policy', { params: { path: { id: clusterId } } }))) as ClusterPolicy,
  });
}

/** The planner's estimate of what a proposed policy would do to the cluster now (nothing is saved). */
export function usePolicyImpact(clusterId: string) {
  return useMutation({
    mutationFn: async (policy: ClusterPolicyInput) =>
      await unwrap(api.POST('/api/clusters/{id}/policy/impact', { params: { path: { id: clusterId } }, body: policy })),
  });
}

export function useSaveClusterPolicy(clusterId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (policy: ClusterPolicyInput) =>
      (await unwrap(api.PUT('/api/clusters/{id}/policy', { params: { path: { id: clusterId } }, body: policy }))) as ClusterPolicy,
    onSuccess: (saved) => queryClient.setQueryData(policyKey(clusterId), saved),
  });
}
