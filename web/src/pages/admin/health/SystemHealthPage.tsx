import type { ActorHealth, SystemHealth } from '../../../api/types';
import { isSuperAdmin, useMe } from '../../../auth/MeContext';
import { Badge, Button, Card, EmptyState, ErrorState, SkeletonRows, Table, type BadgeTone, type Column } from '../../../components';
import { DashboardIcon } from '../../../components/icons';
import { PageHeader } from '../../../layout/PageHeader';
import { useAdminHealth } from '../risk/api';
import { LiveLogPanel } from './LiveLogPanel';
import { StateChanges } from './StateChanges';

export const SYSTEM_HEALTH_PATH = '/admin/health';

type Light = 'green' | 'yellow' | 'red';
type QueueKind = SystemHealth['job_queue']['kinds'][number];

/** Queue depth traffic light: below 100 green, up to 500 yellow, above red. */
export function queueLight(queued: number): Light {
  if (queued < 100) return 'green';
  if (queued <= 500) return 'yellow';
  return 'red';
}

const LIGHT_LABEL: Record<Light, string> = { green: 'Green', yellow: 'Yellow', red: 'Red' };

export function TrafficLight({ light }: { light: Light }) {
  return (
    <span className="traffic-light" role="img" aria-label={`${LIGHT_LABEL[light]} light`}>
      {(['red', 'yellow', 'green'] as const).map((l) => (
        <span key={l} className={`traffic-light__lamp traffic-light__lamp--${l}${l === light ? ' traffic-light__lamp--on' : ''}`} />
      ))}
    </span>
  );
}

function okTone(ok: boolean): BadgeTone {
  return ok ? 'success' : 'danger';
}

/** Platform system status (super-admins only): components, job queue lights and actors. */
export function SystemHealthPage() {
  const me = useMe();
  if (!isSuperAdmin(me) || me.impersonated_by) {
    return (
      <>
        <PageHeader title="System health" />
        <Card>
          <EmptyState
            icon={<DashboardIcon size={22} />}
            title="You are not allowed to view this page"
            description="Only platform super-admins can see the system status."
          />
        </Card>
      </>
    );
  }
  return <SystemHealthView />;
}

function SystemHealthView() {
  const health = useAdminHealth();
  return (
    <>
      <PageHeader
        title="System health"
        subtitle="Components, the job queue, the account actors and the live server log."
        actions={
          <Button onClick={() => void health.refetch()} loading={health.isFetching}>
            Refresh
          </Button>
        }
      />
      {health.isPending && <SkeletonRows label="Loading system health" />}
      {health.isError && <ErrorState error={health.error} onRetry={() => void health.refetch()} />}
      {health.isSuccess && <HealthDetails health={health.data} />}
      <div className="stack health-logs">
        <StateChanges />
        <LiveLogPanel />
      </div>
    </>
  );
}

function HealthDetails({ health }: { health: SystemHealth }) {
  const queue = health.job_queue;
  const restarting = health.actors.filter((a) => a.state !== 'running').length;
  const actorRestarts = health.actors.reduce((sum, a) => sum + a.restarts, 0);
  const kindColumns: Column<QueueKind>[] = [
    { key: 'kind', header: 'Job kind', render: (k) => <span className="mono">{k.kind}</span> },
    { key: 'queued', header: 'Queued', width: '90px', align: 'right', render: (k) => k.queued },
    { key: 'running', header: 'Running', width: '90px', align: 'right', render: (k) => k.running },
    {
      key: 'light',
      header: 'Depth',
      width: '120px',
      render: (k) => {
        const light = (['green', 'yellow', 'red'] as const).find((l) => l === k.light) ?? queueLight(k.queued);
        return <TrafficLight light={light} />;
      },
    },
  ];
  const actorColumns: Column<ActorHealth>[] = [
    { key: 'account', header: 'Account', render: (a) => <span className="mono">{a.account_id}</span> },
    {
      key: 'state',
      header: 'State',
      width: '120px',
      render: (a) => <Badge tone={a.state === 'running' ? 'success' : 'warning'}>{a.state}</Badge>,
    },
    { key: 'restarts', header: 'Restarts', width: '90px', align: 'right', render: (a) => a.restarts },
    { key: 'clusters', header: 'Clusters', width: '90px', align: 'right', render: (a) => a.clusters },
    { key: 'failure', header: 'Last failure', render: (a) => <span className="muted">{a.last_failure ?? '—'}</span> },
  ];
  return (
    <div className="stack">
      <Card title="Components">
        <ul className="health-components" aria-label="Components">
          <li>
            <span>Overall</span>
            <Badge tone={health.status === 'ok' ? 'success' : 'warning'}>{health.status === 'ok' ? 'OK' : 'Degraded'}</Badge>
          </li>
          <li>
            <span>Database</span>
            <Badge tone={okTone(health.database === 'ok')}>{health.database === 'ok' ? 'OK' : health.database}</Badge>
          </li>
          <li>
            <span>Job queue worker</span>
            <Badge tone={okTone(queue.worker_alive)}>{queue.worker_alive ? 'Alive' : 'Stopped'}</Badge>
          </li>
          <li>
            <span>Worker restarts</span>
            <strong>{queue.worker_restarts}</strong>
          </li>
          <li>
            <span>Account actors</span>
            <strong>
              {health.actors.length - restarting} / {health.actors.length} running
            </strong>
          </li>
          <li>
            <span>Actor restarts</span>
            <strong>{actorRestarts}</strong>
          </li>
          <li>
            <span>Risk model</span>
            <Badge tone={health.risk_model.degraded ? 'warning' : 'success'}>
              {health.risk_model.degraded ? `Degraded — ${health.risk_model.name}` : health.risk_model.name}
            </Badge>
          </li>
          <li>
            <span>Safe mode</span>
            <Badge tone={health.safe_mode ? 'warning' : 'neutral'}>{health.safe_mode ? 'On' : 'Off'}</Badge>
          </li>
        </ul>
        {queue.last_error && (
          <p className="callout callout--danger" role="alert">
            Last queue error: {queue.last_error}
          </p>
        )}
      </Card>
      <Card title="Job queue">
        {queue.kinds.length === 0 ? (
          <p className="muted">No queued or running jobs.</p>
        ) : (
          <Table caption="Job queue depth" columns={kindColumns} rows={queue.kinds} rowKey={(k) => k.kind} />
        )}
        <p className="muted">Lights: green below 100 queued, yellow up to 500, red above.</p>
      </Card>
      <Card title="Account actors">
        {health.actors.length === 0 ? (
          <p className="muted">No account actor is running.</p>
        ) : (
          <Table caption="Account actors" columns={actorColumns} rows={health.actors} rowKey={(a) => a.account_id} />
        )}
      </Card>
    </div>
  );
}
