import { useQueries } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import type { ClusterPolicyInput, PolicyImpact } from '../../api/types';
import { useDebounced } from '../templates/api';

/** The policy page's two layers (the seeds' tabs) and their cards. */
export type Layer = 'infrastructure' | 'workload';
export type CardId = 'autoscaling' | 'consolidation' | 'hibernation' | 'rightsizing' | 'affinity' | 'governance';
type Key = keyof ClusterPolicyInput;

export interface PolicyCardDef {
  id: CardId;
  layer: Layer;
  title: string;
  /** Top-level policy fields the card edits (nested objects as a whole). */
  keys: Key[];
}

export const POLICY_CARDS: PolicyCardDef[] = [
  { id: 'autoscaling', layer: 'infrastructure', title: 'Intelligent autoscaling', keys: ['autoscaling', 'template_id', 'template', 'risk_premium'] },
  {
    id: 'consolidation',
    layer: 'infrastructure',
    title: 'Bin packing & consolidation',
    keys: ['aggressiveness', 'method', 'stabilization_window_secs', 'disruption_budget', 'drain_timeout_secs', 'dry_run', 'maintenance_mode'],
  },
  { id: 'hibernation', layer: 'infrastructure', title: 'Smart hibernation schedule', keys: [] },
  {
    id: 'rightsizing',
    layer: 'workload',
    title: 'Smart pod rightsizing',
    keys: ['rightsize_mode', 'rightsize_percentile', 'rightsize_headroom', 'rightsize_min_monthly_savings'],
  },
  { id: 'affinity', layer: 'workload', title: 'Spot affinity & deployment rules', keys: ['spot_affinity', 'multi_az_spread', 'on_demand_minimums'] },
  { id: 'governance', layer: 'workload', title: 'Governance & exemptions', keys: ['excluded_namespaces', 'excluded_labels'] },
];

/** The layer a server error's field belongs to (for switching to its tab). */
export function layerOfField(field: string): Layer | undefined {
  const top = field.split(/[.[]/)[0];
  return POLICY_CARDS.find((card) => card.keys.includes(top as Key))?.layer;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
const NESTED = new Set<Key>(['template', 'disruption_budget']);

/** Top-level fields whose value differs between two inputs. */
export function changedKeys(base: ClusterPolicyInput, next: ClusterPolicyInput): Key[] {
  const keys = new Set([...Object.keys(base), ...Object.keys(next)] as Key[]);
  return [...keys].filter((key) => !same(base[key], next[key]));
}

/**
 * The PATCH body taking `base` to `next`: only the changed fields, and inside `template` and
 * `disruption_budget` only the changed members. `null` when PATCH cannot express the change
 * (a template link removed, an optional limit cleared): the caller then replaces with PUT.
 */
export function partialPolicy(base: ClusterPolicyInput, next: ClusterPolicyInput): ClusterPolicyInput | null {
  const body: Record<string, unknown> = {};
  for (const key of changedKeys(base, next)) {
    const after = next[key];
    if (after === undefined) return null;
    if (NESTED.has(key)) {
      const before = (base[key] ?? {}) as Record<string, unknown>;
      const now = after as Record<string, unknown>;
      const members: Record<string, unknown> = {};
      for (const member of new Set([...Object.keys(before), ...Object.keys(now)])) {
        if (same(before[member], now[member])) continue;
        if (now[member] === undefined) return null;
        members[member] = now[member];
      }
      body[key] = members;
    } else {
      body[key] = after;
    }
  }
  return body as ClusterPolicyInput;
}

/** `base` with the card's fields taken from `next`. */
export function withCard(base: ClusterPolicyInput, next: ClusterPolicyInput, card: PolicyCardDef): ClusterPolicyInput {
  const merged: Record<string, unknown> = { ...base };
  for (const key of card.keys) {
    if (next[key] === undefined) delete merged[key];
    else merged[key] = next[key];
  }
  return merged as ClusterPolicyInput;
}

export interface CardImpact {
  /** Monthly cost difference against the saved policy's plan; undefined while loading or failed. */
  difference?: number;
  loading: boolean;
  error?: unknown;
}

const IMPACT_DEBOUNCE_MS = 500;

/**
 * Estimated impact of each changed card, and of all changes together: the planner runs on
 * the cluster as it is now with the saved policy, with the saved policy plus one card's
 * changes, and with every change; a badge is the difference in planned monthly cost.
 */
export function useCardImpacts(
  clusterId: string,
  base: ClusterPolicyInput,
  next: ClusterPolicyInput,
  enabled: boolean,
): { cards: Partial<Record<CardId, CardImpact>>; total?: CardImpact } {
  const settled = useDebounced(JSON.stringify({ base, next }), IMPACT_DEBOUNCE_MS);
  const { base: b, next: n } = JSON.parse(settled) as { base: ClusterPolicyInput; next: ClusterPolicyInput };
  const changed = new Set(changedKeys(b, n));
  const cards = POLICY_CARDS.filter((card) => card.keys.some((key) => changed.has(key)));
  const bodies: { id: CardId | 'base' | 'total'; body: ClusterPolicyInput }[] = enabled && changed.size > 0
    ? [{ id: 'base', body: b }, { id: 'total', body: n }, ...cards.map((card) => ({ id: card.id, body: withCard(b, n, card) }))]
    : [];
  const results = useQueries({
    queries: bodies.map(({ body }) => ({
      queryKey: ['clusters', clusterId, 'policy-impact', JSON.stringify(body)] as const,
      queryFn: async (): Promise<PolicyImpact> =>
        await unwrap(api.POST('/api/clusters/{id}/policy/impact', { params: { path: { id: clusterId } }, body })),
      staleTime: 60_000,
      retry: false,
    })),
  });
  const baseResult = results[0];
  const impactOf = (index: number): CardImpact => {
    const result = results[index];
    if (result === undefined || baseResult === undefined) return { loading: false };
    const error = result.error ?? baseResult.error;
    if (error) return { loading: false, error };
    if (result.data === undefined || baseResult.data === undefined) return { loading: true };
    return { loading: false, difference: result.data.planned_monthly - baseResult.data.planned_monthly };
  };
  const out: Partial<Record<CardId, CardImpact>> = {};
  bodies.forEach(({ id }, index) => {
    if (id !== 'base' && id !== 'total') out[id] = impactOf(index);
  });
  // Cards whose changes are still being debounced show as loading.
  const pending = settled !== JSON.stringify({ base, next });
  if (pending) {
    for (const card of POLICY_CARDS.filter((c) => c.keys.some((key) => changedKeys(base, next).includes(key)))) out[card.id] = { loading: true };
  }
  return { cards: out, total: bodies.length > 0 ? (pending ? { loading: true } : impactOf(1)) : undefined };
}
