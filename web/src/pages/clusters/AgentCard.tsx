import { useState } from 'react';
import { Link } from 'react-router-dom';
import type { AgentCommand, AgentInfo, AgentToken, AgentWatch } from '../../api/agent';
import { ApiError, errorMessage } from '../../api/errors';
import { Badge, Button, Card, ErrorState, Modal, SkeletonRows, Table, useToast, type BadgeTone, type Column } from '../../components';
import { formatDateTime } from '../../lib/format';
import { AgentBadge } from './AgentBadge';
import { activeSafeMode, addClusterPath, useAgent, useAgentCommands, useRevokeAgent, useRotateAgentToken } from './agent';
import { InstallCommands } from './InstallCommands';

/**
 * The cluster's in-cluster agent: status, versions, watch health, metrics API, safe mode, the
 * token (rotate, revoke) and the commands it ran. Owners and admins manage the token.
 */
export function AgentCard({ clusterId, clusterName, canManage }: { clusterId: string; clusterName: string; canManage: boolean }) {
  const agent = useAgent(clusterId);
  const notFound = agent.error instanceof ApiError && agent.error.status === 404;
  return (
    <Card
      title={
        <div className="row">
          <h2>Agent</h2>
          {agent.data && (
            <AgentBadge
              clusterId={clusterId}
              clusterName={clusterName}
              status={agent.data.status}
              lastHeartbeatAt={agent.data.last_heartbeat_at}
              safeMode={activeSafeMode(agent.data) !== null}
            />
          )}
        </div>
      }
      actions={agent.data && canManage ? <TokenActions clusterId={clusterId} clusterName={clusterName} agent={agent.data} /> : undefined}
    >
      {agent.isPending && <SkeletonRows rows={3} label="Loading agent status" />}
      {agent.isError &&
        (notFound ? (
          <p className="muted">This server does not report an agent for this cluster.</p>
        ) : (
          <ErrorState error={agent.error} title="Could not load the agent status" onRetry={() => void agent.refetch()} />
        ))}
      {agent.data && <AgentDetails clusterId={clusterId} agent={agent.data} canManage={canManage} />}
    </Card>
  );
}

function AgentDetails({ clusterId, agent, canManage }: { clusterId: string; agent: AgentInfo; canManage: boolean }) {
  if (agent.status === 'not_installed' || agent.status === 'revoked') {
    return (
      <div className="stack">
        <p className="muted">
          {agent.status === 'revoked'
            ? 'The agent token was revoked: the agent can no longer reach Spot Optimizer. Install it again with a new token.'
            : 'No agent runs in this cluster yet. Without it Spot Optimizer cannot see pods, PodDisruptionBudgets or usage, and cannot drain nodes safely.'}
        </p>
        {canManage && (
          <div className="row">
            <Link to={addClusterPath(clusterId)} className="btn btn--primary">
              Install agent
            </Link>
          </div>
        )}
      </div>
    );
  }
  const safeMode = agent.safe_mode;
  return (
    <div className="stack">
      {safeMode != null &&
        (activeSafeMode(agent) !== null ? (
          <div className="callout callout--warning" role="status">
            <p className="callout__title">Agent in safe mode since {formatDateTime(safeMode.entered_at)}</p>
            <p>{safeMode.reason}. It finishes commands it already started and starts no new one until it reaches Spot Optimizer again.</p>
          </div>
        ) : (
          <div className="callout callout--info">
            <p className="callout__title">Last safe mode</p>
            <p>
              {formatDateTime(safeMode.entered_at)}
              {safeMode.exited_at != null && ` – ${formatDateTime(safeMode.exited_at)}`}: {safeMode.reason}
            </p>
          </div>
        ))}
      {agent.status === 'waiting' && <p className="muted">A token was issued; no heartbeat has arrived from the agent yet.</p>}
      <dl className="agent-details">
        <div>
          <dt>Last heartbeat</dt>
          <dd>{agent.last_heartbeat_at != null ? formatDateTime(agent.last_heartbeat_at) : 'Never'}</dd>
        </div>
        <div>
          <dt>Agent version</dt>
          <dd>{agent.agent_version ?? '—'}</dd>
        </div>
        <div>
          <dt>Kubernetes version</dt>
          <dd>{agent.kubernetes_version ?? '—'}</dd>
        </div>
        <div>
          <dt>Protocol version</dt>
          <dd>{agent.protocol_version ?? '—'}</dd>
        </div>
        <div>
          <dt>Metrics API</dt>
          <dd>
            {agent.metrics_available == null ? (
              '—'
            ) : agent.metrics_available ? (
              <Badge tone="success">Available</Badge>
            ) : (
              <span title="Install metrics-server so usage-based grades and rightsizing have data">
                <Badge tone="warning">Not available</Badge>
              </span>
            )}
          </dd>
        </div>
        <div>
          <dt>Seen by the agent</dt>
          <dd>
            {agent.nodes.toLocaleString()} nodes · {agent.pods.toLocaleString()} pods · {agent.pdbs.toLocaleString()} PDBs
            {agent.pending_pods > 0 && <span className="muted"> · {agent.pending_pods.toLocaleString()} pending</span>}
          </dd>
        </div>
        <div>
          <dt>Token</dt>
          <dd>
            {agent.token_prefix != null ? <span className="mono">{agent.token_prefix}…</span> : '—'}
            {agent.token_created_at != null && <span className="muted"> issued {formatDateTime(agent.token_created_at)}</span>}
          </dd>
        </div>
      </dl>
      {agent.watches.length > 0 && <Table caption="Watches" columns={watchColumns} rows={agent.watches} rowKey={(watch) => watch.resource} />}
    </div>
  );
}

const watchColumns: Column<AgentWatch>[] = [
  { key: 'resource', header: 'Watch', render: (watch) => <span className="cell-title">{watch.resource}</span> },
  {
    key: 'healthy',
    header: 'Health',
    render: (watch) => <Badge tone={watch.healthy ? 'success' : 'danger'}>{watch.healthy ? 'Healthy' : 'Failing'}</Badge>,
  },
  { key: 'objects', header: 'Objects', align: 'right', render: (watch) => watch.objects.toLocaleString() },
  { key: 'relists', header: 'Re-lists', align: 'right', render: (watch) => watch.relists.toLocaleString() },
  { key: 'last', header: 'Last event', render: (watch) => (watch.last_event_at != null ? formatDateTime(watch.last_event_at) : '—') },
  { key: 'error', header: 'Last error', render: (watch) => <span className="muted">{watch.last_error ?? '—'}</span> },
];

type Dialog = 'rotate' | 'revoke' | null;

/** Rotate (new token shown once, old one revoked at once) and revoke, each confirmed first. */
function TokenActions({ clusterId, clusterName, agent }: { clusterId: string; clusterName: string; agent: AgentInfo }) {
  const [dialog, setDialog] = useState<Dialog>(null);
  const [issued, setIssued] = useState<AgentToken | null>(null);
  const rotate = useRotateAgentToken();
  const revoke = useRevokeAgent();
  const toast = useToast();
  const hasToken = agent.status !== 'not_installed' && agent.status !== 'revoked';
  if (!hasToken) return null;

  const close = () => {
    setDialog(null);
    setIssued(null);
    rotate.reset();
    revoke.reset();
  };

  return (
    <>
      <Button size="sm" onClick={() => setDialog('rotate')}>
        Rotate token
      </Button>
      <Button size="sm" variant="danger" onClick={() => setDialog('revoke')}>
        Revoke
      </Button>
      <Modal
        open={dialog === 'rotate'}
        onClose={close}
        size="lg"
        title={issued ? 'New agent token' : 'Rotate the agent token?'}
        description={issued ? `Reinstall or upgrade the agent on ${clusterName} with this command.` : undefined}
        footer={
          issued ? (
            <Button variant="primary" onClick={close}>
              Done
            </Button>
          ) : (
            <>
              <Button variant="ghost" onClick={close}>
                Cancel
              </Button>
              <Button variant="primary" loading={rotate.isPending} onClick={() => rotate.mutate(clusterId, { onSuccess: setIssued })}>
                Rotate token
              </Button>
            </>
          )
        }
      >
        {issued ? (
          <InstallCommands token={issued} />
        ) : (
          <div className="stack">
            <p>
              A new token is issued and the current one (<span className="mono">{agent.token_prefix ?? 'unknown'}…</span>) stops working at
              once: the running agent disconnects until you update it with the new token.
            </p>
            {rotate.isError && (
              <div className="form-alert" role="alert">
                {errorMessage(rotate.error)}
              </div>
            )}
          </div>
        )}
      </Modal>
      <Modal
        open={dialog === 'revoke'}
        onClose={close}
        title="Revoke the agent token?"
        footer={
          <>
            <Button variant="ghost" onClick={close}>
              Cancel
            </Button>
            <Button
              variant="danger"
              loading={revoke.isPending}
              onClick={() =>
                revoke.mutate(clusterId, {
                  onSuccess: () => {
                    close();
                    toast.success(`Agent token for ${clusterName} revoked.`);
                  },
                })
              }
            >
              Revoke token
            </Button>
          </>
        }
      >
        <div className="stack">
          <p>
            The agent on {clusterName} is refused from now on and stops acting on the cluster. Optimizations that need it (drains,
            rightsizing) are refused until you install it again with a new token.
          </p>
          {revoke.isError && (
            <div className="form-alert" role="alert">
              {errorMessage(revoke.error)}
            </div>
          )}
        </div>
      </Modal>
    </>
  );
}

const COMMAND_TONE: Record<string, BadgeTone> = {
  pending: 'neutral',
  running: 'info',
  succeeded: 'success',
  failed: 'danger',
  expired: 'warning',
};

/** A command's outcome in one short line: its message (or reason), and for drains the evictions. */
export function commandResultSummary(command: Pick<AgentCommand, 'outcome' | 'message' | 'reason' | 'evictions' | 'result'>): string {
  const parts: string[] = [];
  const text = command.message || command.reason || command.outcome;
  if (text) parts.push(text);
  const evictions = command.evictions ?? [];
  if (evictions.length > 0) {
    const evicted = evictions.filter((eviction) => eviction.outcome === 'evicted').length;
    parts.push(`${evicted} of ${evictions.length} pods evicted`);
  }
  if (parts.length === 0 && command.result != null) {
    const json = typeof command.result === 'string' ? command.result : JSON.stringify(command.result);
    parts.push(json.length > 120 ? `${json.slice(0, 117)}…` : json);
  }
  return parts.length > 0 ? parts.join(' · ') : '—';
}

const commandColumns: Column<AgentCommand>[] = [
  { key: 'created', header: 'Queued', render: (command) => <span className="nowrap">{formatDateTime(command.created_at)}</span> },
  {
    key: 'kind',
    header: 'Command',
    render: (command) => (
      <div className="cell-stack">
        <span className="mono">{command.kind}</span>
        {command.target && <span className="muted mono">{command.target}</span>}
      </div>
    ),
  },
  { key: 'status', header: 'Status', render: (command) => <Badge tone={COMMAND_TONE[command.status] ?? 'neutral'}>{command.status}</Badge> },
  {
    key: 'finished',
    header: 'Finished',
    render: (command) => <span className="nowrap">{command.finished_at != null ? formatDateTime(command.finished_at) : '—'}</span>,
  },
  { key: 'result', header: 'Result', render: (command) => <span className="muted">{commandResultSummary(command)}</span> },
];

/** Commands queued for the agent (cordon, drain, …), newest first as the server lists them. */
export function AgentCommandsCard({ clusterId }: { clusterId: string }) {
  const commands = useAgentCommands(clusterId);
  const notFound = commands.error instanceof ApiError && commands.error.status === 404;
  if (notFound) return null;
  return (
    <Card title="Recent agent commands" flush>
      {commands.isPending && <SkeletonRows rows={3} label="Loading agent commands" />}
      {commands.isError && (
        <div className="card__empty">
          <ErrorState error={commands.error} title="Could not load agent commands" onRetry={() => void commands.refetch()} />
        </div>
      )}
      {commands.isSuccess &&
        (commands.data.length === 0 ? (
          <p className="muted card__empty">The agent has not been asked to do anything yet.</p>
        ) : (
          <Table caption="Recent agent commands" columns={commandColumns} rows={commands.data.slice(0, 20)} rowKey={(command) => command.id} />
        ))}
    </Card>
  );
}
