import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { allPages, MAX_PAGE } from '../../api/paging';
import { inventoryKey, jobItemsKey, jobKey, jobsKey } from '../../api/keys';
import type { JobItemList } from '../../api/types';
import { isFinished } from '../clusters/jobs';

export const wasteKey = [...inventoryKey, 'waste'] as const;

// Each list is read whole (every page): selections and totals cover all of it.
export function useUnregisteredInstances() {
  return useQuery({
    queryKey: [...wasteKey, 'instances'],
    queryFn: () => allPages((cursor) => unwrap(api.GET('/api/instances/unregistered', { params: { query: { cursor, limit: MAX_PAGE } } }))),
  });
}

export function useOrphanedVolumes() {
  return useQuery({
    queryKey: [...wasteKey, 'volumes'],
    queryFn: () => allPages((cursor) => unwrap(api.GET('/api/volumes/orphaned', { params: { query: { cursor, limit: MAX_PAGE } } }))),
  });
}

export function useUnusedSnapshots() {
  return useQuery({
    queryKey: [...wasteKey, 'snapshots'],
    queryFn: () => allPages((cursor) => unwrap(api.GET('/api/snapshots/unused', { params: { query: { cursor, limit: MAX_PAGE } } }))),
  });
}

/** The three batches the waste page queues. */
export type WasteBatchKind = 'cleanup_volumes' | 'cleanup_snapshots' | 'terminate_unregistered';

export interface WasteBatchInput {
  kind: WasteBatchKind;
  ids: string[];
  dryRun: boolean;
}

function postBatch({ kind, ids, dryRun }: WasteBatchInput) {
  const body = { body: { ids, dry_run: dryRun } };
  switch (kind) {
    case 'cleanup_volumes':
      return unwrap(api.POST('/api/volumes/orphaned/cleanup', body));
    case 'cleanup_snapshots':
      return unwrap(api.POST('/api/snapshots/unused/cleanup', body));
    case 'terminate_unregistered':
      return unwrap(api.POST('/api/instances/unregistered/terminate', body));
  }
}

/** Queues a clean-up batch; the job is cached so its panel shows it at once. */
export function useWasteBatch() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: postBatch,
    onSuccess: (job) => {
      queryClient.setQueryData(jobKey(job.id), job);
      void queryClient.invalidateQueries({ queryKey: [...jobsKey, 'list'] });
    },
  });
}

/** Keeps unregistered instances: they leave the list and terminate batches skip them. */
export function useAuthorizeInstances() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (ids: string[]) => unwrap(api.POST('/api/instances/unregistered/authorize', { body: { ids } })),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: [...wasteKey, 'instances'] }),
  });
}

/**
 * A batch's items. Live `job.item` events write each item's progress into this cache (see
 * useLiveEvents); the query also re-reads every 2 s until the batch has finished, for when the
 * event stream is down.
 */
export function useJobItems(jobId: string, jobStatus: string | undefined) {
  return useQuery({
    queryKey: jobItemsKey(jobId),
    queryFn: (): Promise<JobItemList> => unwrap(api.GET('/api/jobs/{id}/items', { params: { path: { id: jobId } } })),
    refetchInterval: isFinished(jobStatus) ? false : 2000,
  });
}
