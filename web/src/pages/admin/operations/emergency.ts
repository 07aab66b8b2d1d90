import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../../api/client';
import { jobsKey } from '../../../api/keys';
import type { components } from '../../../api/schema';
import { overridesKey } from '../../clusters/overrides';

type Schemas = components['schemas'];
export type PlatformOverride = Schemas['PlatformOverride'];
export type OverrideProgress = Schemas['OverrideProgressView'];
export type ClusterProgress = Schemas['ClusterProgressView'];

/** Platform-wide emergency overrides with their progress (super-admins). */
export const platformOverridesKey = ['admin', 'overrides'] as const;

/** How often the progress is re-read while an override is switching nodes. */
export const LIVE_POLL_MS = 2_000;
const IDLE_POLL_MS = 15_000;

/** The override shown first: the one in force, else none. */
export function activeOverride(items: PlatformOverride[] | undefined): PlatformOverride | undefined {
  return items?.find((item) => item.override.active);
}

/** Platform overrides, polled every 2 s while one is in force and still switching nodes. */
export function usePlatformOverrides() {
  return useQuery({
    queryKey: platformOverridesKey,
    queryFn: () => unwrap(api.GET('/api/admin/overrides')),
    refetchInterval: (query) => {
      const active = activeOverride(query.state.data?.items);
      return active !== undefined && !active.progress.complete ? LIVE_POLL_MS : IDLE_POLL_MS;
    },
  });
}

export interface PlatformForceBody {
  reason: string;
  duration_hours: number | null;
}

/** Starts the platform-wide emergency override (every cluster of every organization). */
export function useForcePlatform() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: PlatformForceBody) => unwrap(api.POST('/api/admin/force-on-demand', { body })),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: platformOverridesKey });
      void queryClient.invalidateQueries({ queryKey: overridesKey });
      void queryClient.invalidateQueries({ queryKey: [...jobsKey, 'list'] });
    },
  });
}

/** Share of the nodes to switch that were switched, 0–1 (an override with nothing to switch is done when complete). */
export function switchedRatio(p: Pick<OverrideProgress, 'nodes_switched' | 'nodes_to_switch' | 'complete'>): number {
  if (p.nodes_to_switch <= 0) return p.complete ? 1 : 0;
  return Math.min(1, p.nodes_switched / p.nodes_to_switch);
}

/** "12/145 nodes switched". */
export function switchedText(p: Pick<OverrideProgress, 'nodes_switched' | 'nodes_to_switch'>): string {
  return `${p.nodes_switched}/${p.nodes_to_switch} node${p.nodes_to_switch === 1 ? '' : 's'} switched`;
}
