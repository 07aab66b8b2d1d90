import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { policyKey, policyVersionsKey, templatesKey } from '../../api/keys';
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
  /** Spot offers are weighed at `price × (1 + risk_premium × p)` plus a per-node risk term; 0–10, default 3. */
  risk_premium?: number;
  /** Pods carrying any of these labels are never moved (their nodes are unmanaged). */
  excluded_labels?: LabelPair[];
  /** Per-namespace spot rules. */
  spot_affinity?: SpotAffinity[];
  rightsize_mode?: RightsizeMode;
  /** Rightsizing reductions saving less than this (USD/month) are not recommended. */
  rightsize_min_monthly_savings?: number;
  /** Intelligent autoscaling; off: no node is ever added (pending pods stay pending). Missing from older servers (on). */
  autoscaling?: boolean;
  /** Spread each workload's pods over availability zones. Missing from older servers (off). */
  multi_az_spread?: boolean;
  /** The organization node template the policy follows (`template` is then that template's). */
  template_id?: string | null;
  template_name?: string | null;
  /** The stored version this is; missing until the policy is first saved. */
  version?: number | null;
  /** When (ISO time) and by whom (e-mail) the current version was saved. */
  updated_at?: string | null;
  updated_by?: string | null;
}

/** One stored version of a cluster's policy (`GET /api/clusters/{id}/policy/versions`). */
export interface PolicyVersion {
  version: number;
  created_at: string;
  created_by?: string | null;
  /** Why it was made, e.g. "revert to version 3". */
  note?: string | null;
  policy: ClusterPolicy;
}

/** Fields of the policy view that describe the stored version, not the policy: never sent back, never diffed. */
export const POLICY_METADATA = ['version', 'updated_at', 'updated_by', 'template_name'] as const;

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

export interface LabelPair {
  key: string;
  value: string;
}

export type SpotPreference = 'force' | 'prefer' | 'never';
export interface SpotAffinity {
  namespace: string;
  mode: SpotPreference;
}
export type RightsizeMode = 'off' | 'recommend' | 'auto';

export const SPOT_PREFERENCES: { value: SpotPreference; label: string }[] = [
  { value: 'force', label: 'Force spot (spot only)' },
  { value: 'prefer', label: 'Prefer spot (fall back to On-Demand)' },
  { value: 'never', label: 'Never spot (On-Demand only)' },
];
export const RIGHTSIZE_MODES: { value: RightsizeMode; label: string }[] = [
  { value: 'off', label: 'Off' },
  { value: 'recommend', label: 'Recommendations only' },
  { value: 'auto', label: 'Automatic apply' },
];
export const DEFAULT_EXCLUDED_LABELS: LabelPair[] = [{ key: 'karpenter.sh/do-not-evict', value: 'true' }];
export const DEFAULT_RIGHTSIZE_MIN_SAVINGS = 10;

export const DEFAULT_DISRUPTION_BUDGET: DisruptionBudget = { max_percent: 10, max_nodes: null, max_waves: null };
export const DEFAULT_RISK_PREMIUM = 3;

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

/**
 * Saves the policy: `patch` sends only the changed fields (PATCH); `replace` sends the whole
 * policy (PUT), for changes PATCH cannot express (a template link removed, a limit cleared).
 */
export function useSaveClusterPolicy(clusterId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ patch, replace }: { patch?: ClusterPolicyInput; replace?: ClusterPolicyInput }) => {
      const params = { params: { path: { id: clusterId } } };
      if (patch !== undefined) return (await unwrap(api.PATCH('/api/clusters/{id}/policy', { ...params, body: patch }))) as ClusterPolicy;
      return (await unwrap(api.PUT('/api/clusters/{id}/policy', { ...params, body: replace ?? {} }))) as ClusterPolicy;
    },
    onSuccess: (saved) => {
      queryClient.setQueryData(policyKey(clusterId), saved);
      // Every save is a new version. A template's "used by" follows the policies that link it
      // (neither awaited: the save is done).
      void queryClient.invalidateQueries({ queryKey: policyVersionsKey(clusterId) });
      void queryClient.invalidateQueries({ queryKey: templatesKey });
    },
  });
}

/** The cluster's stored policy versions, newest first; fetched only while `enabled` (the history is open). */
export function usePolicyVersions(clusterId: string, enabled = true) {
  return useQuery({
    queryKey: policyVersionsKey(clusterId),
    queryFn: async () =>
      ((await unwrap(api.GET('/api/clusters/{id}/policy/versions', { params: { path: { id: clusterId } } }))).items ?? []) as PolicyVersion[],
    enabled,
  });
}

/** Restores a stored version (admins and owners); the server saves it as a new version and returns the policy. */
export function useRevertClusterPolicy(clusterId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (version: number) =>
      (await unwrap(api.POST('/api/clusters/{id}/policy/revert', { params: { path: { id: clusterId } }, body: { version } }))) as ClusterPolicy,
    onSuccess: (restored) => {
      queryClient.setQueryData(policyKey(clusterId), restored);
      void queryClient.invalidateQueries({ queryKey: policyVersionsKey(clusterId) });
      void queryClient.invalidateQueries({ queryKey: templatesKey });
    },
  });
}

// --- What changed between two versions ------------------------------------------------------

/** Objects whose fields are compared one by one (`template.capacity_type: spot → hybrid`). */
const NESTED = new Set(['template', 'disruption_budget']);
const IGNORED = new Set<string>(POLICY_METADATA);

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** JSON with sorted keys and null/undefined treated alike, for comparing values regardless of key order. */
function canonical(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value)
      .filter((key) => value[key] !== null && value[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;

function describeValue(value: unknown, key: string): string {
  if (value === null || value === undefined || value === '') return 'none';
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (Array.isArray(value)) {
    if (value.length === 0) return 'none';
    if (value.every((item) => !isPlainObject(item) && !Array.isArray(item))) return value.map(String).join(', ');
    return plural(value.length, key === 'on_demand_minimums' ? 'rule' : 'item');
  }
  if (isPlainObject(value)) return canonical(value);
  return String(value);
}

function change(key: string, before: unknown, after: unknown): string {
  const from = describeValue(before, key);
  const to = describeValue(after, key);
  return from === to ? `${key} changed` : `${key}: ${from} → ${to}`;
}

const templateLabel = (policy: ClusterPolicy) => (policy.template_id ? (policy.template_name ?? policy.template_id) : 'own');

/**
 * What differs from `previous` to `current`, one line per field (`aggressiveness: balanced →
 * aggressive`): top-level fields, the fields of `template` and `disruption_budget`, and the
 * linked template (by name). Empty when nothing differs.
 */
export function diffPolicies(previous: ClusterPolicy, current: ClusterPolicy): string[] {
  const before = previous as unknown as Record<string, unknown>;
  const after = current as unknown as Record<string, unknown>;
  const changes: string[] = [];
  if ((previous.template_id ?? null) !== (current.template_id ?? null)) {
    changes.push(`template_id: ${templateLabel(previous)} → ${templateLabel(current)}`);
  }
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((key) => key !== 'template_id' && !IGNORED.has(key));
  for (const key of keys) {
    const a = before[key];
    const b = after[key];
    if (canonical(a) === canonical(b)) continue;
    if (NESTED.has(key) && (isPlainObject(a) || isPlainObject(b))) {
      const inner = { ...(isPlainObject(a) ? a : {}), ...(isPlainObject(b) ? b : {}) };
      for (const field of Object.keys(inner)) {
        const x = isPlainObject(a) ? a[field] : undefined;
        const y = isPlainObject(b) ? b[field] : undefined;
        if (canonical(x) !== canonical(y)) changes.push(change(`${key}.${field}`, x, y));
      }
      continue;
    }
    changes.push(change(key, a, b));
  }
  return changes;
}
