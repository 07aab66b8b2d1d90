import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { allPages, MAX_PAGE } from '../../api/paging';
import { inventoryKey } from '../../api/keys';

/**
 * Every cluster of the organization (every page). Filtering and sorting happen in the
 * browser: the status bar and the "high cost" median need the whole set anyway, and an
 * organization has tens of clusters, not thousands.
 */
export function useClusters() {
  return useQuery({
    queryKey: [...inventoryKey, 'clusters'],
    queryFn: () => allPages((cursor) => unwrap(api.GET('/api/clusters', { params: { query: { cursor, limit: MAX_PAGE } } }))),
  });
}

export function useCluster(id: string) {
  return useQuery({
    queryKey: [...inventoryKey, 'clusters', id],
    queryFn: () => unwrap(api.GET('/api/clusters/{id}', { params: { path: { id } } })),
  });
}

export function useInstance(id: string | null) {
  return useQuery({
    queryKey: [...inventoryKey, 'instances', id],
    queryFn: () => unwrap(api.GET('/api/instances/{id}', { params: { path: { id: id ?? '' } } })),
    enabled: id !== null,
  });
}
