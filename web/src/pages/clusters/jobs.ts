import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { jobActionsKey, jobKey, jobsKey } from '../../api/keys';
import type { JobList } from '../../api/types';
import type { BadgeTone } from '../../components';
import { watchJob } from '../../live/jobAnnouncements';

// Shapes of the JSON an optimize job carries (`plan` and `result` are typed `unknown` in the
// OpenAPI document: they are the engine's versioned action plan and the executor's report).

export interface PlanDestination {
  instance_type: string;
  /** `spot` or `on_demand`. */
  lifecycle: string;
  az: string;
  hourly_price?: number;
}

export interface PlanAction {
  kind: string;
  /** Node name, or `namespace/Kind/name` for a workload. */
  target: string;
  reason: string;
  expected_monthly_savings: number;
  destination?: PlanDestination | null;
}

export interface ActionPlan {
  version: number;
  actions: PlanAction[];
  blocked: { action: PlanAction; reason: string }[];
  expected_monthly_savings: number;
}

/** One action as the executor reported it (an entry of `result.executed`, `result.failed` or a `job.action` event). */
export interface ActionReport {
  index: number;
  kind?: string;
  target?: string;
  /** Missing on a failed action, which carries `error` instead. */
  status?: string;
  error?: string;
  step?: string;
  reason?: string;
  fallback?: string | null;
  launched?: string[];
  terminated?: string;
  /** How a node was retired: launch → cordon → ready → drain → delete_node → terminate (uncordon after a failed drain). */
  steps?: ActionStep[];
}

/** One step of retiring or replacing a node, done through the cloud or the in-cluster agent. */
export interface ActionStep {
  step: string;
  ok?: boolean;
  message?: string;
  node?: string;
  nodes?: string[];
  evictions?: { pod: string; outcome: string; retries?: number; message?: string | null }[];
}

/** A short label for an action step, e.g. `drain (12 evicted)`. */
export function stepLabel(s: ActionStep): string {
  if (s.step === 'drain' && Array.isArray(s.evictions)) {
    const evicted = s.evictions.filter((e) => e.outcome === 'evicted').length;
    const blocked = s.evictions.filter((e) => e.outcome === 'blocked_by_pdb').length;
    return `drain (${evicted} evicted${blocked ? `, ${blocked} blocked by PDB` : ''})`;
  }
  if (s.step === 'delete_node') return 'delete node';
  return s.step;
}

export interface JobResult {
  mode?: string;
  executed: ActionReport[];
  failed?: ActionReport;
  not_run: { kind: string; target: string }[];
  realised_monthly_savings?: number;
  expected_monthly_savings?: number;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

function parseAction(value: unknown): PlanAction | null {
  if (!isObject(value)) return null;
  const destination = isObject(value.destination)
    ? {
        instance_type: str(value.destination.instance_type) ?? '?',
        lifecycle: str(value.destination.lifecycle) ?? '',
        az: str(value.destination.az) ?? '',
        hourly_price: num(value.destination.hourly_price),
      }
    : null;
  return {
    kind: str(value.kind) ?? 'unknown',
    target: str(value.target) ?? '',
    reason: str(value.reason) ?? '',
    expected_monthly_savings: num(value.expected_monthly_savings) ?? 0,
    destination,
  };
}

export function parsePlan(value: unknown): ActionPlan | null {
  if (!isObject(value)) return null;
  return {
    version: num(value.version) ?? 1,
    actions: list(value.actions).flatMap((action) => parseAction(action) ?? []),
    blocked: list(value.blocked).flatMap((entry) => {
      const action = isObject(entry) ? parseAction(entry.action) : null;
      return action && isObject(entry) ? [{ action, reason: str(entry.reason) ?? '' }] : [];
    }),
    expected_monthly_savings: num(value.expected_monthly_savings) ?? 0,
  };
}

export function parseReport(value: unknown): ActionReport | null {
  if (!isObject(value) || num(value.index) === undefined) return null;
  return {
    index: num(value.index) ?? 0,
    kind: str(value.kind),
    target: str(value.target),
    status: str(value.status),
    error: str(value.error),
    step: str(value.step),
    reason: str(value.reason),
    fallback: str(value.fallback) ?? null,
    launched: list(value.launched).flatMap((id) => str(id) ?? []),
    terminated: str(value.terminated),
    steps: list(value.steps).flatMap((entry) => parseStep(entry) ?? []),
  };
}

function parseStep(value: unknown): ActionStep | null {
  if (!isObject(value)) return null;
  const step = str(value.step);
  if (!step) return null;
  return {
    step,
    ok: typeof value.ok === 'boolean' ? value.ok : undefined,
    message: str(value.message),
    node: str(value.node),
    evictions: list(value.evictions).flatMap((e) =>
      isObject(e) && str(e.pod) && str(e.outcome)
        ? [{ pod: str(e.pod) ?? '', outcome: str(e.outcome) ?? '', retries: num(e.retries), message: str(e.message) ?? null }]
        : [],
    ),
  };
}

export function parseResult(value: unknown): JobResult | null {
  if (!isObject(value)) return null;
  return {
    mode: str(value.mode),
    executed: list(value.executed).flatMap((entry) => parseReport(entry) ?? []),
    failed: parseReport(value.failed) ?? undefined,
    not_run: list(value.not_run).flatMap((entry) => (isObject(entry) ? [{ kind: str(entry.kind) ?? 'unknown', target: str(entry.target) ?? '' }] : [])),
    realised_monthly_savings: num(value.realised_monthly_savings),
    expected_monthly_savings: num(value.expected_monthly_savings),
  };
}

export function isFinished(status: string | undefined): boolean {
  return status === 'succeeded' || status === 'failed';
}

const JOB_STATUS: Record<string, { label: string; tone: BadgeTone }> = {
  queued: { label: 'Queued', tone: 'neutral' },
  running: { label: 'Running', tone: 'info' },
  succeeded: { label: 'Succeeded', tone: 'success' },
  failed: { label: 'Failed', tone: 'danger' },
};

export function jobStatus(status: string): { label: string; tone: BadgeTone } {
  return JOB_STATUS[status] ?? { label: status, tone: 'neutral' };
}

const ACTION_KIND: Record<string, string> = {
  move_to_spot: 'Move to spot',
  replace_node: 'Replace node',
  delete_empty_node: 'Delete empty node',
  drain_and_delete_node: 'Drain and delete node',
  rightsize_down: 'Rightsize down',
  rightsize_up: 'Rightsize up',
};

export function actionKindLabel(kind: string): string {
  return ACTION_KIND[kind] ?? kind.replace(/_/g, ' ');
}

/** Where an action stands: from the final result, a live `job.action` event, or the job's state. */
export type ActionState = 'applied' | 'would_execute' | 'skipped' | 'failed' | 'not_run' | 'pending';

const ACTION_STATE: Record<ActionState, { label: string; tone: BadgeTone }> = {
  applied: { label: 'Applied', tone: 'success' },
  would_execute: { label: 'Would execute', tone: 'info' },
  skipped: { label: 'Skipped', tone: 'neutral' },
  failed: { label: 'Failed', tone: 'danger' },
  not_run: { label: 'Not run', tone: 'warning' },
  pending: { label: 'Pending', tone: 'neutral' },
};

export function actionStateBadge(state: ActionState): { label: string; tone: BadgeTone } {
  return ACTION_STATE[state];
}

export function reportState(report: ActionReport): ActionState {
  if (report.error !== undefined || report.status === undefined) return 'failed';
  if (report.status === 'applied' || report.status === 'would_execute' || report.status === 'skipped') return report.status;
  return 'pending';
}

const LIFECYCLE: Record<string, string> = { spot: 'Spot', on_demand: 'On-Demand', 'on-demand': 'On-Demand' };

export function destinationLifecycle(lifecycle: string): string {
  return LIFECYCLE[lifecycle] ?? lifecycle;
}

// ---- Queries ---------------------------------------------------------------------------

/** One job; re-read every second until it has finished (live `job.progress` events update it in between). */
export function useJob(id: string | null) {
  return useQuery({
    queryKey: jobKey(id ?? ''),
    queryFn: () => unwrap(api.GET('/api/jobs/{id}', { params: { path: { id: id ?? '' } } })),
    enabled: id !== null,
    refetchInterval: (query) => (isFinished(query.state.data?.status) ? false : 1000),
    staleTime: (query) => (isFinished(query.state.data?.status) ? 30_000 : 0),
  });
}

/** The organization's 50 newest jobs; re-read every 5 s while one of them is still going. */
export function useJobs() {
  return useQuery({
    queryKey: [...jobsKey, 'list'],
    queryFn: () => unwrap(api.GET('/api/jobs')),
    refetchInterval: (query) => (query.state.data?.items.some((job) => !isFinished(job.status)) ? 5000 : false),
  });
}

/** Actions of a running job reported through live events (filled by useLiveEvents). */
export function useLiveJobActions(id: string | null) {
  return useQuery({
    queryKey: jobActionsKey(id ?? ''),
    queryFn: (): Record<number, ActionReport> => ({}),
    enabled: id !== null,
    staleTime: Infinity,
  });
}

export function useOptimizeCluster(clusterId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (dryRun: boolean) => unwrap(api.POST('/api/clusters/{id}/optimize', { params: { path: { id: clusterId } }, body: { dry_run: dryRun } })),
    onSuccess: (job) => {
      watchJob(job.id);
      queryClient.setQueryData(jobKey(job.id), job);
      queryClient.setQueryData<JobList>([...jobsKey, 'list'], (current) => (current ? { items: [job, ...current.items.filter((item) => item.id !== job.id)] } : current));
      void queryClient.invalidateQueries({ queryKey: [...jobsKey, 'list'] });
    },
  });
}
