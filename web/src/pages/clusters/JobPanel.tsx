import { useEffect, useId } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { ApiError } from '../../api/errors';
import { jobsKey } from '../../api/keys';
import type { Job } from '../../api/types';
import { Badge, Button, EmptyState, ErrorState, SkeletonRows, Table, useToast, type Column } from '../../components';
import { formatDateTime, formatHourly, formatPercent, formatUsdCents } from '../../lib/format';
import { takeJobAnnouncement, watchJob } from '../../live/jobAnnouncements';
import {
  actionKindLabel,
  actionStateBadge,
  destinationLifecycle,
  isFinished,
  jobStatus,
  keepReasonLabel,
  keptReasonCounts,
  nodeDecisionBadge,
  nodeDecisionSummary,
  parsePlan,
  parseResult,
  reportState,
  sortNodeDecisions,
  stepLabel,
  strategyLabel,
  useCancelJob,
  useJob,
  useLiveJobActions,
  type ActionPlan,
  type ActionReport,
  type ActionState,
  type PlanAction,
  type PlanNode,
} from './jobs';

/** Progress of one optimize job and, once planned, its actions with their execution status. */
export function JobPanel({ jobId, onDismiss, canCancel = false }: { jobId: string; onDismiss: () => void; canCancel?: boolean }) {
  const job = useJob(jobId);
  const headingId = useId();
  const showCancel = canCancel && job.isSuccess && !isFinished(job.data.status);
  const dismiss = (
    <Button variant="ghost" size="sm" onClick={onDismiss} aria-label="Close job panel">
      Close
    </Button>
  );
  const title = (
    <div className="row row--wrap">
      <h2 id={headingId}>{job.isSuccess && job.data.kind === 'force_on_demand' ? 'Force on-demand job' : 'Optimization job'}</h2>
      {job.isSuccess && <JobBadges job={job.data} />}
    </div>
  );
  return (
    <section aria-labelledby={headingId} className="card job-panel">
      <header className="card__header">
        {title}
        <div className="row">
          {showCancel && <CancelJobButton job={job.data} />}
          {dismiss}
        </div>
      </header>
      <div className="card__body">
        {job.isPending && <SkeletonRows rows={3} label="Loading job" />}
        {job.isError &&
          (job.error instanceof ApiError && job.error.status === 404 ? (
            <EmptyState title="Job not found" description="It may belong to another organization or have been removed." />
          ) : (
            <ErrorState error={job.error} title="Could not load this job" onRetry={() => void job.refetch()} />
          ))}
        {job.isSuccess && <JobBody job={job.data} />}
      </div>
    </section>
  );
}

/** Stops the job: a queued one never starts; a running one stops before its next action. */
function CancelJobButton({ job }: { job: Job }) {
  const cancel = useCancelJob(job.id);
  const toast = useToast();
  const requested = job.cancel_requested_at != null;
  return (
    <Button
      variant="secondary"
      size="sm"
      disabled={requested || cancel.isPending}
      onClick={() =>
        cancel.mutate(undefined, {
          onSuccess: (updated) =>
            toast.info(updated.status === 'cancelled' ? 'The job was cancelled before it started.' : 'Cancelling: the job stops before its next action.'),
          onError: (error) => toast.error(error instanceof ApiError ? error.message : 'Could not cancel the job.'),
        })
      }
    >
      {requested ? 'Cancelling…' : 'Cancel job'}
    </Button>
  );
}

function JobBadges({ job }: { job: Job }) {
  const status = jobStatus(job.status);
  return (
    <>
      <Badge tone={status.tone}>{status.label}</Badge>
      <Badge tone={job.dry_run ? 'info' : 'neutral'}>{job.dry_run ? 'Dry run' : 'Execute'}</Badge>
    </>
  );
}

function JobBody({ job }: { job: Job }) {
  const toast = useToast();
  const queryClient = useQueryClient();
  const liveActions = useLiveJobActions(isFinished(job.status) ? null : job.id);
  const finished = isFinished(job.status);

  // Toast once when a job seen running here finishes (the live stream may announce it first).
  useEffect(() => {
    if (!finished) {
      watchJob(job.id);
      return;
    }
    const announcement = takeJobAnnouncement(job);
    if (announcement) {
      toast[announcement.tone](announcement.message);
      void queryClient.invalidateQueries({ queryKey: [...jobsKey, 'list'] });
    }
  }, [finished, job, toast, queryClient]);

  const plan = parsePlan(job.plan);
  const result = parseResult(job.result);
  const failed = job.status === 'failed';
  const cancelled = job.status === 'cancelled';
  const mode = result?.mode ?? (job.dry_run ? 'dry_run' : 'execute');
  const progressLabel = `${job.progress}%`;
  const message = job.message ?? (job.status === 'queued' ? 'Waiting for a worker…' : job.status === 'running' ? 'Starting…' : '');

  return (
    <div className="stack">
      <div className="scan">
        <div className="row row--between">
          <span className="scan__phase" role="status">
            {message}
            <span className="sr-only">, {progressLabel} complete</span>
          </span>
          <span className="muted" aria-hidden="true">
            {progressLabel}
          </span>
        </div>
        <progress className={failed ? 'progress progress--error' : 'progress'} max={100} value={job.progress} aria-label="Job progress" />
        <p className="muted job-panel__times">
          Queued {formatDateTime(job.created_at)}
          {job.started_at != null && ` · started ${formatDateTime(job.started_at)}`}
          {job.finished_at != null && ` · finished ${formatDateTime(job.finished_at)}`}
        </p>
      </div>

      {failed && (
        <div className="callout callout--danger" role="alert">
          <strong className="callout__title">The job failed</strong>
          <span>{job.message ?? 'No reason was reported.'}</span>
          {result !== null && result.not_run.length > 0 && (
            <span>
              {result.not_run.length} planned action{result.not_run.length === 1 ? '' : 's'} did not run:{' '}
              {result.not_run.map((action) => `${actionKindLabel(action.kind)} ${action.target}`).join(', ')}.
            </span>
          )}
        </div>
      )}

      {cancelled && (
        <div className="callout callout--warning" role="status">
          <strong className="callout__title">The job was cancelled</strong>
          <span>{job.message ?? 'It stopped before its next action.'}</span>
          {result !== null && result.not_run.length > 0 && (
            <span>
              {result.not_run.length} planned action{result.not_run.length === 1 ? '' : 's'} did not run; actions already taken stay taken.
            </span>
          )}
        </div>
      )}

      {job.safe_mode && (
        <p className="muted">Safe mode was on when this job was queued: it plans and records what it would do, and touches nothing.</p>
      )}

      {plan === null ? (
        !finished && <p className="muted">The plan appears here once the cluster has been read and scored.</p>
      ) : (
        <>
          <Savings plan={plan.expected_monthly_savings} realised={result?.realised_monthly_savings} mode={mode} finished={finished} />
          <PlanActions job={job} actions={plan.actions} reports={actionReports(result, liveActions.data)} />
          {plan.blocked.length > 0 && <BlockedActions blocked={plan.blocked} />}
          {plan.nodes.length > 0 ? <NodeDecisions plan={plan} /> : plan.warnings.length > 0 && <PlanWarnings warnings={plan.warnings} />}
        </>
      )}
    </div>
  );
}

function Savings({ plan, realised, mode, finished }: { plan: number; realised?: number; mode: string; finished: boolean }) {
  return (
    <dl className="stats stats--3 job-panel__stats">
      <div className="stat">
        <dt className="stat__label">Expected savings</dt>
        <dd className="stat__value">{formatUsdCents(plan)}</dd>
        <dd className="stat__note">per month, if every planned action runs</dd>
      </div>
      <div className="stat">
        <dt className="stat__label">Realised savings</dt>
        <dd className={realised !== undefined && realised > 0 ? 'stat__value stat__value--success' : 'stat__value'}>
          {finished || realised !== undefined ? formatUsdCents(realised ?? 0) : '—'}
        </dd>
        <dd className="stat__note">{mode === 'dry_run' ? 'dry run: nothing was changed' : 'per month, from the actions applied'}</dd>
      </div>
      <div className="stat">
        <dt className="stat__label">Mode</dt>
        <dd className="stat__value">{mode === 'dry_run' ? 'Dry run' : 'Execute'}</dd>
        <dd className="stat__note">{mode === 'dry_run' ? 'actions are validated, not applied' : 'capacity is launched and replaced'}</dd>
      </div>
    </dl>
  );
}

interface ActionRow {
  index: number;
  action: PlanAction;
  state: ActionState;
  report?: ActionReport;
}

/** Each planned action's report: from the stored result, else from live events. */
function actionReports(result: ReturnType<typeof parseResult>, live: Record<number, ActionReport> | undefined): Map<number, ActionReport> {
  const reports = new Map<number, ActionReport>();
  for (const report of Object.values(live ?? {})) {
    if (typeof report === 'object' && report !== null && typeof report.index === 'number') reports.set(report.index, report);
  }
  for (const report of result?.executed ?? []) reports.set(report.index, report);
  if (result?.failed) reports.set(result.failed.index, result.failed);
  return reports;
}

function PlanActions({ job, actions, reports }: { job: Job; actions: PlanAction[]; reports: Map<number, ActionReport> }) {
  const headingId = useId();
  const finished = isFinished(job.status);
  const rows: ActionRow[] = actions.map((action, index) => {
    const report = reports.get(index);
    const state: ActionState = report ? reportState(report) : finished ? 'not_run' : 'pending';
    return { index, action, state, report };
  });
  return (
    <section className="stack stack--tight" aria-labelledby={headingId}>
      <h3 id={headingId}>Planned actions ({actions.length})</h3>
      {actions.length === 0 ? (
        <p className="muted">Nothing to do: the cluster is already efficient under its policy.</p>
      ) : (
        <div className="card">
          <Table caption="Planned actions" columns={actionColumns} rows={rows} rowKey={(row) => String(row.index)} />
        </div>
      )}
    </section>
  );
}

function Destination({ action }: { action: PlanAction }) {
  const destination = action.destination;
  if (!destination) return <span className="muted">—</span>;
  return (
    <div className="cell-stack">
      <span className="nowrap">
        <span className="mono">{destination.instance_type}</span>
        {destination.hourly_price !== undefined && <span className="muted"> · {formatHourly(destination.hourly_price)}/h</span>}
      </span>
      <span className="muted nowrap">
        {destinationLifecycle(destination.lifecycle)} · {destination.az}
      </span>
      {(action.extra_destinations ?? []).map((extra, i) => (
        <span key={`${extra.instance_type}-${extra.az}-${i}`} className="muted nowrap">
          + <span className="mono">{extra.instance_type}</span> · {destinationLifecycle(extra.lifecycle)} · {extra.az}
        </span>
      ))}
    </div>
  );
}

function StatusCell({ row }: { row: ActionRow }) {
  const badge = actionStateBadge(row.state);
  const report = row.report;
  const note = report?.error
    ? `${report.step ? `${report.step}: ` : ''}${report.error}`
    : report?.status === 'skipped'
      ? report.reason
      : (report?.fallback ?? undefined);
  return (
    <div className="cell-stack">
      <span>
        <Badge tone={badge.tone}>{badge.label}</Badge>
      </span>
      {note && <span className={report?.error ? 'field__error' : 'muted'}>{note}</span>}
      {report?.steps && report.steps.length > 0 && (
        <ol className="job-steps" aria-label="Steps">
          {report.steps.map((s, i) => (
            <li key={`${s.step}-${i}`} className={s.ok === false ? 'field__error' : 'muted'}>
              {stepLabel(s)}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

const actionColumns: Column<ActionRow>[] = [
  { key: 'index', header: '#', align: 'right', render: (row) => row.index + 1 },
  {
    key: 'action',
    header: 'Action',
    render: (row) => (
      <div className="cell-stack">
        <span className="cell-title nowrap">{actionKindLabel(row.action.kind)}</span>
        {row.action.reason && <span className="muted job-panel__reason">{row.action.reason}</span>}
      </div>
    ),
  },
  { key: 'target', header: 'Target node', render: (row) => <span className="mono">{row.action.target}</span> },
  { key: 'destination', header: 'Destination', render: (row) => <Destination action={row.action} /> },
  { key: 'savings', header: 'Expected / month', align: 'right', render: (row) => <span className="nowrap">{formatUsdCents(row.action.expected_monthly_savings)}</span> },
  { key: 'status', header: 'Status', render: (row) => <StatusCell row={row} /> },
];

function BlockedActions({ blocked }: { blocked: { action: PlanAction; reason: string }[] }) {
  const headingId = useId();
  return (
    <section className="stack stack--tight" aria-labelledby={headingId}>
      <h3 id={headingId}>Blocked actions ({blocked.length})</h3>
      <ul className="blocked-list" aria-labelledby={headingId}>
        {blocked.map(({ action, reason }, index) => (
          <li key={`${action.target}-${index}`} className="blocked-list__item">
            <div className="row row--wrap">
              <Badge tone="warning">Blocked</Badge>
              <span className="cell-title">{actionKindLabel(action.kind)}</span>
              <span className="mono">{action.target}</span>
              <span className="muted">{formatUsdCents(action.expected_monthly_savings)}/month</span>
            </div>
            <p className="muted">{reason}</p>
          </li>
        ))}
      </ul>
    </section>
  );
}

const SOURCE: Record<string, string> = {
  agent: 'Nodes and pods as seen by the in-cluster agent.',
  cloud: 'Nodes and pods from the cloud inventory (no in-cluster agent was connected).',
};

/** Every node of the cluster with the plan's decision and, for a kept node, why it is not consolidated. */
function NodeDecisions({ plan }: { plan: ActionPlan }) {
  const headingId = useId();
  const rows = sortNodeDecisions(plan.nodes);
  const kept = keptReasonCounts(plan.nodes);
  const strategy = strategyLabel(plan.strategy);
  const source = plan.source !== undefined ? SOURCE[plan.source] : undefined;
  return (
    <section className="stack stack--tight" aria-labelledby={headingId}>
      <h3 id={headingId}>Node decisions ({plan.nodes.length})</h3>
      <div className="node-decisions__summary">
        <p className="muted">What the plan does with each node of the cluster, and why the others are kept as they are.</p>
        <p>{nodeDecisionSummary(plan)}</p>
        {kept.length > 0 && <p>Kept because: {kept.map(({ label, count }) => `${label} (${count})`).join(', ')}.</p>}
        {strategy && <p className="muted">Approach: {strategy}.</p>}
        {plan.costs && (
          <p className="muted">
            Cluster cost: {formatHourly(plan.costs.current_hourly)}/h now → {formatHourly(plan.costs.planned_hourly)}/h planned.
          </p>
        )}
        {source && <p className="muted">{source}</p>}
      </div>
      {plan.warnings.length > 0 && <PlanWarnings warnings={plan.warnings} />}
      <div className="card">
        <Table caption="Node decisions" columns={nodeColumns(plan.waves)} rows={rows} rowKey={(row) => row.node} />
      </div>
      <p className="muted node-decisions__note">
        A wave is a group of nodes changed together; the next wave starts once the previous one is done. Utilization is the higher of the CPU and memory
        the node&apos;s pods request, as a share of what the node can allocate.
      </p>
    </section>
  );
}

function PlanWarnings({ warnings }: { warnings: string[] }) {
  return (
    <div className="callout callout--warning" role="note">
      <strong className="callout__title">The plan cannot meet every policy rule</strong>
      <ul className="node-decisions__warnings">
        {warnings.map((warning, index) => (
          <li key={`${index}-${warning}`}>{warning}</li>
        ))}
      </ul>
    </div>
  );
}

function WhyCell({ row, waves }: { row: PlanNode; waves?: number }) {
  const kept = row.decision === 'kept';
  const title = kept
    ? keepReasonLabel(row.why)
    : row.wave !== undefined
      ? `wave ${row.wave + 1}${waves !== undefined && waves > 0 ? ` of ${waves}` : ''}`
      : undefined;
  return (
    <div className="cell-stack">
      {title && <span className="cell-title">{title}</span>}
      {row.reason && <span className="muted job-panel__reason">{row.reason}</span>}
      {row.by.length > 0 && <span className="muted">Pods move to new nodes: {row.by.join(', ')}</span>}
      {row.risk !== undefined && row.risk > 0 && <span className="muted">Interruption risk of the new spot nodes: up to {formatPercent(row.risk)}</span>}
    </div>
  );
}

const nodeColumns = (waves?: number): Column<PlanNode>[] => [
  { key: 'node', header: 'Node', render: (row) => <span className="mono">{row.node}</span> },
  {
    key: 'decision',
    header: 'Decision',
    render: (row) => {
      const badge = nodeDecisionBadge(row.decision);
      return <Badge tone={badge.tone}>{badge.label}</Badge>;
    },
  },
  { key: 'why', header: 'Why', render: (row) => <WhyCell row={row} waves={waves} /> },
  { key: 'utilization', header: 'Utilization', align: 'right', render: (row) => formatPercent(row.utilization) },
  {
    key: 'saving',
    header: 'Saving / hour',
    align: 'right',
    render: (row) => (row.decision === 'kept' || row.saving_hourly === 0 ? <span className="muted">—</span> : <span className="nowrap">{formatHourly(row.saving_hourly)}</span>),
  },
];
