import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { inventoryKey } from '../../api/keys';

export function useUnregisteredInstances() {
  return useQuery({ queryKey: [...inventoryKey, 'waste', 'instances'], queryFn: () => unwrap(api.GET('/api/instances/unregistered')) });
}

export function useOrphanedVolumes() {
  return useQuery({ queryKey: [...inventoryKey, 'waste', 'volumes'], queryFn: () => unwrap(api.GET('/api/volumes/orphaned')) });
}

export function useUnusedSnapshots() {
  return useQuery({ queryKey: [...inventoryKey, 'waste', 'snapshots'], queryFn: () => unwrap(api.GET('/api/snapshots/unused')) });
}
