import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { policyKey } from '../../api/keys';

// `GET/PUT /api/clusters/{id}/policy` are typed `unknown` in the OpenAPI document; this is the
// JSON the server serializes (checked against a running server).

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

export function useSaveClusterPolicy(clusterId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (policy: ClusterPolicy) =>
      (await unwrap(api.PUT('/api/clusters/{id}/policy', { params: { path: { id: clusterId } }, body: policy }))) as ClusterPolicy,
    onSuccess: (saved) => queryClient.setQueryData(policyKey(clusterId), saved),
  });
}
