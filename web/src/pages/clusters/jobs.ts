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
  /** Further nodes a replacement launches when its pods need more than one. */
  extra_destinations?: PlanDestination[];
}

/** How the planner built the plan: the packer's target fleet, small steps, or nothing movable. */
export type PlanStrategy = 'target' | 'incremental' | 'none';

/** What happens to an existing node. */
export type NodeDecision = 'kept' | 'deleted_empty' | 'drained' | 'replaced';

/** Why a node is kept (the planner's `why` code). */
export type KeepReason =
  | 'manual_override'
  | 'unmanaged'
  | 'cordoned'
  | 'not_ready'
  | 'do_not_disrupt'
  | 'maintenance_mode'
  | 'stabilization_window'
  | 'pdb'
  | 'unplaceable'
  | 'method_delete_empty'
  | 'in_target_fleet'
  | 'well_utilized'
  | 'pods_do_not_fit'
  | 'saving_below_threshold'
  | 'budget_exhausted';

/** The planner's decision for one node of the cluster. Unknown codes from a newer server are kept as-is. */
export interface PlanNode {
  node: string;
  decision: NodeDecision | (string & Record<never, never>);
  /** Only for kept nodes. */
  why?: KeepReason | (string & Record<never, never>);
  /** 0-based disruption wave, for changed nodes. */
  wave?: number;
  /** New nodes receiving a replaced node's pods. */
  by: string[];
  /** Highest interruption probability among the new spot nodes receiving its pods (replaced nodes). */
  risk?: number;
  /** Real USD/h this node's change saves (0 when kept). */
  saving_hourly: number;
  /** 0–1. */
  utilization: number;
  /** Human sentence. */
  reason: string;
}

/** Cost figures in USD/h (`gap` is a fraction); objective and bounds are risk-weighted. */
export interface PlanCosts {
  current_hourly: number;
  planned_hourly: number;
  saving_hourly: number;
  saving_monthly: number;
  lower_bound_hourly: number;
  gap: number;
  objective_hourly: number;
  ffd_objective_hourly: number;
  lower_bound_valid: boolean;
}

export interface ActionPlan {
  version: number;
  actions: PlanAction[];
  blocked: { action: PlanAction; reason: string }[];
  expected_monthly_savings: number;
  // The fields below come from the engine's planner; jobs planned by older releases lack them.
  strategy?: PlanStrategy | (string & Record<never, never>);
  /** Nodes disrupted at most per wave. */
  disruption_budget?: number;
  /** Number of disruption waves. */
  waves?: number;
  /** One entry per node of the cluster; empty on older jobs. */
  nodes: PlanNode[];
  costs?: PlanCosts;
  /** Policy rules the plan could not meet (e.g. on-demand minimums); empty on older jobs. */
  warnings: string[];
  /** Where nodes and pods were read: `agent` (the in-cluster agent) or `cloud`. */
  source?: 'agent' | 'cloud' | (string & Record<never, never>);
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

function parseDestination(value: unknown): PlanDestination | null {
  if (!isObject(value)) return null;
  return {
    instance_type: str(value.instance_type) ?? '?',
    lifecycle: str(value.lifecycle) ?? '',
    az: str(value.az) ?? '',
    hourly_price: num(value.hourly_price),
  };
}

function parseAction(value: unknown): PlanAction | null {
  if (!isObject(value)) return null;
  return {
    kind: str(value.kind) ?? 'unknown',
    target: str(value.target) ?? '',
    reason: str(value.reason) ?? '',
    expected_monthly_savings: num(value.expected_monthly_savings) ?? 0,
    destination: parseDestination(value.destination),
    extra_destinations: list(value.extra_destinations).flatMap((d) => parseDestination(d) ?? []),
  };
}

function parseNode(value: unknown): PlanNode | null {
  if (!isObject(value)) return null;
  const node = str(value.node);
  if (node === undefined) return null;
  return {
    node,
    decision: str(value.decision) ?? 'kept',
    why: str(value.why),
    wave: num(value.wave),
    by: list(value.by).flatMap((name) => str(name) ?? []),
    risk: num(value.risk),
    saving_hourly: num(value.saving_hourly) ?? 0,
    utilization: num(value.utilization) ?? 0,
    reason: str(value.reason) ?? '',
  };
}

function parseCosts(value: unknown): PlanCosts | undefined {
  if (!isObject(value)) return undefined;
  const current = num(value.current_hourly);
  const planned = num(value.planned_hourly);
  if (current === undefined || planned === undefined) return undefined;
  return {
    current_hourly: current,
    planned_hourly: planned,
    saving_hourly: num(value.saving_hourly) ?? current - planned,
    saving_monthly: num(value.saving_monthly) ?? (current - planned) * 730,
    lower_bound_hourly: num(value.lower_bound_hourly) ?? 0,
    gap: num(value.gap) ?? 0,
    objective_hourly: num(value.objective_hourly) ?? 0,
    ffd_objective_hourly: num(value.ffd_objective_hourly) ?? 0,
    lower_bound_valid: value.lower_bound_valid === true,
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
    strategy: str(value.strategy),
    disruption_budget: num(value.disruption_budget),
    waves: num(value.waves),
    nodes: list(value.nodes).flatMap((node) => parseNode(node) ?? []),
    costs: parseCosts(value.costs),
    warnings: list(value.warnings).flatMap((warning) => str(warning) ?? []),
    source: str(value.source),
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
  return status === 'succeeded' || status === 'failed' || status === 'cancelled';
}

const JOB_STATUS: Record<string, { label: string; tone: BadgeTone }> = {
  queued: { label: 'Queued', tone: 'neutral' },
  running: { label: 'Running', tone: 'info' },
  succeeded: { label: 'Succeeded', tone: 'success' },
  failed: { label: 'Failed', tone: 'danger' },
  cancelled: { label: 'Cancelled', tone: 'warning' },
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

// ---- Node decisions (the "why not consolidated" view) ------------------------------------

const KEEP_REASON: Record<KeepReason, string> = {
  manual_override: 'forced on-demand (manual override)',
  unmanaged: 'unmanaged',
  cordoned: 'cordoned',
  not_ready: 'not Ready',
  do_not_disrupt: 'do-not-disrupt',
  maintenance_mode: 'maintenance mode',
  stabilization_window: 'inside stabilization window',
  pdb: 'PodDisruptionBudget',
  unplaceable: 'unplaceable pod',
  method_delete_empty: 'delete-empty method',
  in_target_fleet: 'part of target fleet',
  well_utilized: 'well utilized',
  pods_do_not_fit: 'pods do not fit elsewhere',
  saving_below_threshold: 'saving below threshold',
  budget_exhausted: 'disruption budget exhausted',
};

/** A short label for why a node is kept, e.g. `PodDisruptionBudget`; unknown codes are spelled out. */
export function keepReasonLabel(why: string | undefined): string {
  if (why === undefined || why === '') return 'no reason given';
  return (KEEP_REASON as Record<string, string>)[why] ?? why.replace(/_/g, ' ');
}

const NODE_DECISION: Record<NodeDecision, { label: string; tone: BadgeTone }> = {
  kept: { label: 'Kept', tone: 'neutral' },
  deleted_empty: { label: 'Delete (empty)', tone: 'success' },
  drained: { label: 'Drain & delete', tone: 'success' },
  replaced: { label: 'Replace', tone: 'info' },
};

/** `Kept`, `Delete (empty)`, `Drain & delete` or `Replace`. */
export function nodeDecisionLabel(decision: string): string {
  return nodeDecisionBadge(decision).label;
}

export function nodeDecisionBadge(decision: string): { label: string; tone: BadgeTone } {
  return (NODE_DECISION as Record<string, { label: string; tone: BadgeTone }>)[decision] ?? { label: decision.replace(/_/g, ' '), tone: 'neutral' };
}

const STRATEGY: Record<PlanStrategy, string> = {
  target: 'repack the pods onto the cheapest set of nodes that fits them (the target fleet)',
  incremental: 'delete empty nodes and move pods off under-used ones',
  none: 'no node can be changed under the current policy',
};

/** The plan's strategy in words, or undefined for an unknown one. */
export function strategyLabel(strategy: string | undefined): string | undefined {
  return strategy === undefined ? undefined : (STRATEGY as Record<string, string>)[strategy];
}

const plural = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;

/** Changed nodes first (by wave, then name), then kept nodes by name. */
export function sortNodeDecisions(nodes: PlanNode[]): PlanNode[] {
  const changed = nodes.filter((n) => n.decision !== 'kept');
  const kept = nodes.filter((n) => n.decision === 'kept');
  const byName = (a: PlanNode, b: PlanNode) => a.node.localeCompare(b.node);
  changed.sort((a, b) => (a.wave ?? Number.MAX_SAFE_INTEGER) - (b.wave ?? Number.MAX_SAFE_INTEGER) || byName(a, b));
  kept.sort(byName);
  return [...changed, ...kept];
}

/** E.g. `12 nodes: 3 change in 2 waves (at most 1 node at a time), 9 kept.` */
export function nodeDecisionSummary(plan: Pick<ActionPlan, 'nodes' | 'waves' | 'disruption_budget'>): string {
  const total = plan.nodes.length;
  const changed = plan.nodes.filter((n) => n.decision !== 'kept').length;
  const kept = total - changed;
  if (changed === 0) return `${plural(total, 'node')}: ${total === 1 ? 'it is' : 'all are'} kept.`;
  const waves = plan.waves ?? new Set(plan.nodes.flatMap((n) => (n.decision !== 'kept' && n.wave !== undefined ? [n.wave] : []))).size;
  const inWaves = waves > 0 ? ` in ${plural(waves, 'wave')}` : '';
  const budget = plan.disruption_budget !== undefined ? ` (at most ${plural(plan.disruption_budget, 'node')} at a time)` : '';
  return `${plural(total, 'node')}: ${changed} change${inWaves}${budget}, ${kept} kept.`;
}

/** Kept nodes counted by reason, most frequent first: `well utilized (4), PodDisruptionBudget (2)`. */
export function keptReasonCounts(nodes: PlanNode[]): { label: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const n of nodes) {
    if (n.decision !== 'kept') continue;
    const label = keepReasonLabel(n.why);
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return [...counts.entries()].map(([label, count]) => ({ label, count })).sort((a, b) => b.count - a.count || a.label.localeCompare(b.label));
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

/** The organization's 50 newest jobs (the first page); re-read every 5 s while one of them is still going. */
export function useJobs() {
  return useQuery({
    queryKey: [...jobsKey, 'list'],
    queryFn: () => unwrap(api.GET('/api/jobs', { params: { query: { limit: 50 } } })),
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

/** Cancels a job: a queued one at once, a running one before its next action. */
export function useCancelJob(jobId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => unwrap(api.POST('/api/jobs/{id}/cancel', { params: { path: { id: jobId } } })),
    onSuccess: (job) => {
      queryClient.setQueryData(jobKey(job.id), job);
      void queryClient.invalidateQueries({ queryKey: [...jobsKey, 'list'] });
    },
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
