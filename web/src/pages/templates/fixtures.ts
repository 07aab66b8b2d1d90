import type { Template } from '../../api/types';

export function makeTemplate(overrides: Partial<Template> = {}): Template {
  return {
    id: 't-1',
    name: 'general-spot',
    description: 'Stateless services',
    is_default: true,
    spec: {
      families: ['m6i', 'm7i', 'c6i'],
      architectures: ['x86_64'],
      excluded_sizes: ['nano', 'micro'],
      capacity_type: 'spot',
      strategy: 'capacity_optimized',
      allow_burstable: false,
      on_demand_fallback: true,
      storage: { volume_type: 'gp3', size_gib: 50 },
      security_groups: [],
      labels: {},
      taints: [],
    },
    used_by: [],
    created_at: '2024-05-01T09:00:00Z',
    updated_at: '2024-05-01T09:00:00Z',
    ...overrides,
  };
}

export const estimate = {
  instance_types: 24,
  pools: 72,
  avg_spot_hourly: 0.0712,
  avg_on_demand_hourly: 0.2034,
  spot_discount: 0.65,
  account_id: 'acc-1',
  region: 'us-east-1',
};
