import type { Job } from '../../api/types';
import { Badge, Card, ErrorState, SkeletonRows, Table, type Column } from '../../components';
import { formatDateTime, formatUsdCents } from '../../lib/format';
import { isFinished, jobStatus, parsePlan, parseResult, useJobs } from './jobs';

/** The cluster's recent optimize jobs (from the organization's 50 newest); a row opens the job. */
export function JobsCard({ clusterId, selectedId, onOpen }: { clusterId: string; selectedId: string | null; onOpen: (job: Job) => void }) {
  const jobs = useJobs();
  const rows = jobs.data?.items.filter((job) => job.target_id === clusterId) ?? [];
  return (
    <Card title="Recent jobs" flush>
      {jobs.isPending && <SkeletonRows rows={3} label="Loading jobs" />}
      {jobs.isError && (
        <div className="card__empty">
          <ErrorState error={jobs.error} title="Could not load jobs" onRetry={() => void jobs.refetch()} />
        </div>
      )}
      {jobs.isSuccess &&
        (rows.length === 0 ? (
          <p className="muted card__empty">No optimization jobs for this cluster yet.</p>
        ) : (
          <Table
            caption="Recent jobs"
            columns={columns(selectedId)}
            rows={rows}
            rowKey={(job) => job.id}
            onRowClick={onOpen}
            rowLabel={(job) => `${job.dry_run ? 'Dry run' : 'Optimization'} queued ${formatDateTime(job.created_at)}, ${jobStatus(job.status).label}, open job`}
          />
        ))}
    </Card>
  );
}

function savings(job: Job): string {
  const result = parseResult(job.result);
  if (result?.mode === 'execute' && result.realised_monthly_savings !== undefined) return `${formatUsdCents(result.realised_monthly_savings)} realised`;
  const expected = result?.expected_monthly_savings ?? parsePlan(job.plan)?.expected_monthly_savings;
  return expected !== undefined ? `${formatUsdCents(expected)} expected` : '—';
}

function columns(selectedId: string | null): Column<Job>[] {
  return [
    {
      key: 'created',
      header: 'Queued',
      render: (job) => (
        <span className="nowrap">
          {formatDateTime(job.created_at)}
          {job.id === selectedId && <span className="sr-only"> (shown above)</span>}
        </span>
      ),
    },
    {
      key: 'mode',
      header: 'Mode',
      render: (job) => <Badge tone={job.dry_run ? 'info' : 'neutral'}>{job.dry_run ? 'Dry run' : 'Execute'}</Badge>,
    },
    {
      key: 'status',
      header: 'Status',
      render: (job) => {
        const status = jobStatus(job.status);
        return (
          <span className="row nowrap">
            <Badge tone={status.tone}>{status.label}</Badge>
            {!isFinished(job.status) && <span className="muted">{job.progress}%</span>}
          </span>
        );
      },
    },
    { key: 'message', header: 'Summary', render: (job) => <span className="muted">{job.message ?? '—'}</span> },
    { key: 'savings', header: 'Savings / month', align: 'right', render: (job) => <span className="nowrap">{savings(job)}</span> },
  ];
}
