import { useState } from 'react';
import { isSuperAdmin, useMe } from '../../../auth/MeContext';
import { Badge, Button, Card, EmptyState, ErrorState, SelectField, SkeletonRows, Table, type BadgeTone, type Column } from '../../../components';
import { DashboardIcon } from '../../../components/icons';
import { PageHeader } from '../../../layout/PageHeader';
import { formatDateTime, formatUsd } from '../../../lib/format';
import { STEP_LABEL, useOperations, type DecisionFunnel, type Operations, type PlatformKpis, type ReasonCount, type StageStatus } from '../console/api';
import { TrafficLight } from '../health/SystemHealthPage';
import { EmergencyOverrideCard } from './EmergencyOverride';

export const OPERATIONS_PATH = '/admin/operations';

const WINDOWS = [
  { hours: 1, label: 'Last hour' },
  { hours: 6, label: 'Last 6 hours' },
  { hours: 24, label: 'Last 24 hours' },
  { hours: 168, label: 'Last 7 days' },
];

/** Live operations (super-admins only): platform KPIs, the decision funnel and pipeline status. */
export function OperationsPage() {
  const me = useMe();
  if (!isSuperAdmin(me) || me.impersonated_by) {
    return (
      <>
        <PageHeader title="Live operations" />
        <Card>
          <EmptyState
            icon={<DashboardIcon size={22} />}
            title="You are not allowed to view this page"
            description="Only platform super-admins can see live operations."
          />
        </Card>
      </>
    );
  }
  return <OperationsView />;
}

function OperationsView() {
  const [hours, setHours] = useState(24);
  const ops = useOperations(hours);
  return (
    <>
      <PageHeader
        title="Live operations"
        subtitle="Platform figures and the decision pipeline, computed from stored jobs, plans and audit records. Refreshes every 15 seconds."
        actions={
          <div className="row row--end">
            <div className="ops-window">
              <SelectField label="Window" value={hours} onChange={(e) => setHours(Number(e.target.value))}>
                {WINDOWS.map((w) => (
                  <option key={w.hours} value={w.hours}>
                    {w.label}
                  </option>
                ))}
              </SelectField>
            </div>
            <Button onClick={() => void ops.refetch()} loading={ops.isFetching}>
              Refresh
            </Button>
          </div>
        }
      />
      <div className="stack">
        <section aria-label="Global controls">
          <EmergencyOverrideCard />
        </section>
        {ops.isPending && <SkeletonRows label="Loading live operations" />}
        {ops.isError && <ErrorState error={ops.error} onRetry={() => void ops.refetch()} />}
        {ops.isSuccess && <OperationsDetails ops={ops.data} />}
      </div>
    </>
  );
}

function OperationsDetails({ ops }: { ops: Operations }) {
  return (
    <div className="stack">
      <Kpis kpis={ops.kpis} hours={ops.window_hours} />
      <div className="ops-grid">
        <Card title="Decision pipeline">
          <Funnel funnel={ops.funnel} />
        </Card>
        <div className="stack">
          <Card title="Why actions were blocked" flush>
            <Reasons caption="Blocked reasons" reasons={ops.funnel.blocked_reasons} empty="Nothing was blocked in this window." />
          </Card>
          <Card title="Why actions failed" flush>
            <Reasons caption="Failure reasons" reasons={ops.funnel.failed_reasons} empty="Nothing failed in this window." />
          </Card>
        </div>
      </div>
      <Card title="Pipeline status" flush>
        <Stages stages={ops.stages} />
      </Card>
      <p className="muted">As of {formatDateTime(ops.generated_at)}.</p>
    </div>
  );
}

function Kpis({ kpis, hours }: { kpis: PlatformKpis; hours: number }) {
  const stat = (label: string, value: string, note?: string, tone?: 'success') => (
    <div className="stat" key={label}>
      <dt className="stat__label">{label}</dt>
      <dd className={tone === 'success' ? 'stat__value stat__value--success' : 'stat__value'}>{value}</dd>
      {note !== undefined && <dd className="stat__note">{note}</dd>}
    </div>
  );
  return (
    <section aria-label="Platform KPIs">
      <dl className="stats ops-kpis">
        {stat('Organizations', kpis.organizations.toLocaleString(), `${kpis.blocked_organizations} blocked · ${kpis.deleted_organizations} awaiting purge`)}
        {stat('Cloud accounts', kpis.accounts.toLocaleString(), 'linked and connected')}
        {stat('Clusters', kpis.clusters.toLocaleString())}
        {stat('Nodes under management', kpis.nodes.toLocaleString())}
        {stat('Spend run rate', formatUsd(kpis.monthly_spend), 'per month, at current prices')}
        {stat('Savings run rate', formatUsd(kpis.monthly_savings), 'per month, against on-demand', 'success')}
        {stat('Decisions per hour', kpis.decisions_per_hour.toFixed(1), `${kpis.decisions_last_hour} in the last hour · ${hours} h window`)}
      </dl>
    </section>
  );
}

const STEP_TONE: Record<string, string> = { failed: 'danger', blocked: 'warning', executed: 'success' };

function Funnel({ funnel }: { funnel: DecisionFunnel }) {
  // Pools are scored continuously, actions only when a job plans: the action steps share one
  // scale, the scored pools have their own.
  const max = Math.max(1, ...funnel.steps.filter((s) => s.step !== 'pools_scored').map((s) => s.count));
  const width = (step: string, count: number) => {
    if (count === 0) return 0;
    return step === 'pools_scored' ? 100 : Math.max(2, (100 * count) / max);
  };
  return (
    <div className="stack">
      <ol className="funnel" aria-label="Decision funnel">
        {funnel.steps.map((s) => (
          <li key={s.step} className="funnel__step">
            <span className="funnel__label">{STEP_LABEL[s.step] ?? s.step}</span>
            <span className="funnel__track">
              <span
                className={`funnel__bar funnel__bar--${STEP_TONE[s.step] ?? 'primary'}`}
                style={{ width: `${width(s.step, s.count)}%` }}
              />
            </span>
            <strong className="funnel__count">{s.count.toLocaleString()}</strong>
          </li>
        ))}
      </ol>
      <p className="muted">
        Candidates are every action the engine proposed: planned ones passed its checks, blocked ones did not. {funnel.jobs} decision job
        {funnel.jobs === 1 ? '' : 's'} · {funnel.pools_degraded} pool{funnel.pools_degraded === 1 ? '' : 's'} scored by the fallback
        heuristic · {funnel.dry_run} dry-run and {funnel.skipped} skipped action{funnel.skipped === 1 ? '' : 's'} (not counted as executed).
      </p>
    </div>
  );
}

const STATUS_TONE: Record<string, BadgeTone> = { ok: 'success', idle: 'neutral', degraded: 'warning', stale: 'warning', backlog: 'warning', stopped: 'danger' };
type Light = 'green' | 'yellow' | 'red';

function Stages({ stages }: { stages: StageStatus[] }) {
  const columns: Column<StageStatus>[] = [
    {
      key: 'light',
      header: '',
      width: '70px',
      render: (s) => <TrafficLight light={(['green', 'yellow', 'red'] as const).find((l) => l === s.light) ?? ('red' as Light)} />,
    },
    {
      key: 'stage',
      header: 'Stage',
      render: (s) => (
        <div className="stack stack--tight">
          <strong className="capitalize">{s.stage}</strong>
          <span className="muted">{s.detail}</span>
        </div>
      ),
    },
    { key: 'status', header: 'Status', width: '100px', render: (s) => <Badge tone={STATUS_TONE[s.status] ?? 'neutral'}>{s.status}</Badge> },
    { key: 'queued', header: 'Queued', width: '80px', align: 'right', render: (s) => s.queued },
    { key: 'running', header: 'Running', width: '80px', align: 'right', render: (s) => s.running },
    { key: 'processed', header: 'Handled', width: '80px', align: 'right', render: (s) => s.processed },
    { key: 'failed', header: 'Failed', width: '70px', align: 'right', render: (s) => s.failed },
    {
      key: 'last',
      header: 'Last activity',
      width: '150px',
      render: (s) => <span className="muted">{s.last_activity_at ? formatDateTime(s.last_activity_at) : 'never'}</span>,
    },
  ];
  return <Table caption="Pipeline stages" columns={columns} rows={stages} rowKey={(s) => s.stage} />;
}

function Reasons({ caption, reasons, empty }: { caption: string; reasons: ReasonCount[]; empty: string }) {
  if (reasons.length === 0) return <p className="muted card-note ops-empty">{empty}</p>;
  const columns: Column<ReasonCount>[] = [
    { key: 'reason', header: 'Reason', render: (r) => r.reason },
    { key: 'count', header: 'Count', width: '80px', align: 'right', render: (r) => r.count },
  ];
  return <Table caption={caption} columns={columns} rows={reasons} rowKey={(r) => r.reason} />;
}
