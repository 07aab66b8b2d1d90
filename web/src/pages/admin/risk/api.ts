import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../../api/client';
import type { ActorHealth, RiskModelList } from '../../../api/types';
import type { BadgeTone } from '../../../components';
import { isFinished } from '../../clusters/jobs';

export const riskModelsKey = ['admin', 'risk', 'models'] as const;
export const adminHealthKey = ['admin', 'health'] as const;
const adminJobKey = (id: string) => ['admin', 'jobs', id] as const;

export function useRiskModels() {
  return useQuery({ queryKey: riskModelsKey, queryFn: () => unwrap(api.GET('/api/admin/risk/models')) });
}

export function useAdminHealth() {
  return useQuery({ queryKey: adminHealthKey, queryFn: () => unwrap(api.GET('/api/admin/health')) });
}

/** Graduation and rollback answer the new registry; actors swap models, so health changes too. */
function useRegistryMutation<V>(call: (variables: V) => Promise<RiskModelList>) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: call,
    onSuccess: (list) => {
      queryClient.setQueryData(riskModelsKey, list);
      void queryClient.invalidateQueries({ queryKey: riskModelsKey });
      void queryClient.invalidateQueries({ queryKey: adminHealthKey });
    },
  });
}

export function useGraduateModel() {
  return useRegistryMutation((id: string) =>
    unwrap(api.POST('/api/admin/risk/models/{id}/graduate', { params: { path: { id } } })),
  );
}

export function useRollbackModel() {
  return useRegistryMutation((_: void) => unwrap(api.POST('/api/admin/risk/rollback')));
}

export function useUploadModel() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ file, name }: { file: File; name: string }) => {
      const form = new FormData();
      form.append('file', file, file.name);
      if (name.trim() !== '') form.append('name', name.trim());
      // openapi-fetch passes FormData through untouched and lets the browser set the boundary.
      return unwrap(api.POST('/api/admin/risk/models', { body: form as unknown as { file: string; name?: string } }));
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: riskModelsKey }),
  });
}

export function useStartRecompute() {
  return useMutation({ mutationFn: () => unwrap(api.POST('/api/admin/risk/recompute')) });
}

export function useAdminJob(id: string | null) {
  return useQuery({
    queryKey: adminJobKey(id ?? ''),
    queryFn: () => unwrap(api.GET('/api/admin/risk/jobs/{id}', { params: { path: { id: id ?? '' } } })),
    enabled: id !== null,
    refetchInterval: (query) => (isFinished(query.state.data?.status) ? false : 1000),
  });
}

// --- JSON the OpenAPI document leaves untyped ------------------------------------------------

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

export interface ValidationReport {
  runtime?: string;
  contract?: string;
  checks: string[];
  durationMs?: number;
}

/** The validator's report stored with a model: `{runtime, contract, checks[], duration_ms}`. */
export function parseValidation(value: unknown): ValidationReport | null {
  if (!isObject(value)) return null;
  return {
    runtime: str(value.runtime),
    contract: str(value.contract),
    checks: Array.isArray(value.checks) ? value.checks.filter((check): check is string => typeof check === 'string') : [],
    durationMs: num(value.duration_ms),
  };
}

export interface RecomputeResult {
  accounts: number;
  pools: number;
  instances: number;
  failed: string[];
  model?: string;
  degraded: boolean;
}

/** A risk recompute job's `result`: `{accounts, pools, instances, failed, model, degraded}`. */
export function parseRecomputeResult(value: unknown): RecomputeResult | null {
  if (!isObject(value)) return null;
  const failed = Array.isArray(value.failed)
    ? value.failed.map((entry) => (typeof entry === 'string' ? entry : JSON.stringify(entry)))
    : num(value.failed) !== undefined && num(value.failed)! > 0
      ? [`${num(value.failed)} failed`]
      : [];
  return {
    accounts: num(value.accounts) ?? 0,
    pools: num(value.pools) ?? 0,
    instances: num(value.instances) ?? 0,
    failed,
    model: str(value.model),
    degraded: value.degraded === true,
  };
}

const STATUS: Record<string, { label: string; tone: BadgeTone }> = {
  uploaded: { label: 'Uploaded', tone: 'neutral' },
  validated: { label: 'Validated', tone: 'info' },
  graduated: { label: 'Graduated', tone: 'success' },
  retired: { label: 'Retired', tone: 'warning' },
};

export function modelStatus(status: string): { label: string; tone: BadgeTone } {
  return STATUS[status] ?? { label: status, tone: 'neutral' };
}

/** Validated and retired models can (re)become the active one. */
export function canGraduate(status: string): boolean {
  return status === 'validated' || status === 'retired';
}

export interface ModelUsage {
  model: string;
  accounts: number;
  clusters: number;
}

/** How many account and cluster actors decide with each model, most used first. */
export function modelUsage(actors: ActorHealth[]): ModelUsage[] {
  const byModel = new Map<string, ModelUsage>();
  const entry = (model: string) => {
    let usage = byModel.get(model);
    if (usage === undefined) {
      usage = { model, accounts: 0, clusters: 0 };
      byModel.set(model, usage);
    }
    return usage;
  };
  for (const actor of actors) {
    if (actor.model != null) entry(actor.model).accounts += 1;
    for (const model of actor.cluster_models) entry(model).clusters += 1;
  }
  return [...byModel.values()].sort((a, b) => b.accounts + b.clusters - (a.accounts + a.clusters) || a.model.localeCompare(b.model));
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toLocaleString(undefined, { maximumFractionDigits: value < 10 ? 1 : 0 })} ${units[unit]}`;
}
