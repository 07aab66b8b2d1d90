import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { jobKey, jobsKey } from '../../api/keys';
import type { components } from '../../api/schema';
import { watchJob } from '../../live/jobAnnouncements';

export type Override = components['schemas']['OverrideView'];
export type OverrideStarted = components['schemas']['OverrideStarted'];

/** Manual overrides (force on-demand) of the organization and the platform. */
export const overridesKey = ['overrides'] as const;

/** Where a force-on-demand applies. */
export type ForceTarget =
  | { scope: 'instance'; id: string; label: string }
  | { scope: 'cluster'; id: string; label: string; nodes?: number }
  | { scope: 'organization'; label: string; clusters?: number };

/** Duration choices of the dialog, in hours; `null` is "until revoked". */
export const DURATIONS: { hours: number | null; label: string }[] = [
  { hours: 1, label: '1 hour' },
  { hours: 6, label: '6 hours' },
  { hours: 12, label: '12 hours' },
  { hours: 24, label: '24 hours' },
  { hours: null, label: 'Until revoked' },
];

export const MAX_HOURS = 720;

export function useOverrides() {
  return useQuery({
    queryKey: overridesKey,
    queryFn: () => unwrap(api.GET('/api/overrides')),
    // Countdowns and expiries: re-read every half minute (the server's timer granularity).
    refetchInterval: 30_000,
  });
}

function post(target: ForceTarget, body: { duration_hours: number | null; reason: string | null }) {
  switch (target.scope) {
    case 'instance':
      return unwrap(api.POST('/api/instances/{id}/force-on-demand', { params: { path: { id: target.id } }, body }));
    case 'cluster':
      return unwrap(api.POST('/api/clusters/{id}/force-on-demand', { params: { path: { id: target.id } }, body }));
    case 'organization':
      return unwrap(api.POST('/api/org/force-on-demand', { body }));
  }
}

/** Starts a force-on-demand; its jobs are watched like Optimize Now's. */
export function useForceOnDemand(target: ForceTarget) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: { duration_hours: number | null; reason: string | null }) => post(target, body),
    onSuccess: (started: OverrideStarted) => {
      for (const job of started.jobs) {
        watchJob(job.id);
        queryClient.setQueryData(jobKey(job.id), job);
      }
      void queryClient.invalidateQueries({ queryKey: overridesKey });
      void queryClient.invalidateQueries({ queryKey: [...jobsKey, 'list'] });
    },
  });
}

export function useRevokeOverride() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => unwrap(api.POST('/api/overrides/{id}/revoke', { params: { path: { id } } })),
    onSuccess: (done: OverrideStarted) => {
      for (const job of done.jobs) watchJob(job.id);
      void queryClient.invalidateQueries({ queryKey: overridesKey });
      void queryClient.invalidateQueries({ queryKey: [...jobsKey, 'list'] });
    },
  });
}

/** "ends in 5 h 12 min", "until revoked", or how it ended. */
export function overrideTimeLeft(o: Pick<Override, 'active' | 'expires_at' | 'end_reason'>, now: number = Date.now()): string {
  if (!o.active) return o.end_reason === 'expired' ? 'expired' : 'revoked';
  if (o.expires_at == null) return 'until revoked';
  const ms = Date.parse(o.expires_at) - now;
  if (ms <= 0) return 'ending now';
  const minutes = Math.ceil(ms / 60_000);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (h >= 48) return `ends in ${Math.floor(h / 24)} days`;
  return h > 0 ? `ends in ${h} h ${m} min` : `ends in ${m} min`;
}

/** Whether an override forces this cluster (its own, its instances', the organization's or the platform's). */
export function coversCluster(o: Override, clusterId: string): boolean {
  return o.scope === 'organization' || o.scope === 'platform' || o.cluster_id === clusterId;
}

/** What the override applies to, in words. */
export function overrideScopeLabel(o: Pick<Override, 'scope' | 'instance_id' | 'replacement_instance_id'>): string {
  switch (o.scope) {
    case 'instance':
      return `Instance ${o.replacement_instance_id ?? o.instance_id ?? ''}`.trim();
    case 'cluster':
      return 'Whole cluster';
    case 'organization':
      return 'All clusters of the organization';
    case 'platform':
      return 'Platform-wide (emergency)';
    default:
      return o.scope;
  }
}

/** The confirmation sentence of the dialog. */
export function confirmText(target: ForceTarget, hours: number | null): string {
  const span = hours === null ? 'until you revoke it' : `for ${hours} hour${hours === 1 ? '' : 's'}`;
  switch (target.scope) {
    case 'instance':
      return `Force ${target.label} to on-demand ${span}?`;
    case 'cluster':
      return `Force ${target.nodes !== undefined ? `all ${target.nodes} nodes in ` : ''}${target.label} to on-demand ${span}?`;
    case 'organization':
      return `Force ALL clusters${target.clusters !== undefined ? ` (${target.clusters})` : ''} of ${target.label} to on-demand ${span}?`;
  }
}
