import { Link } from 'react-router-dom';
import type { AgentStatus } from '../../api/agent';
import { Badge } from '../../components';
import { formatDateTime } from '../../lib/format';
import { AGENT_STATUS_LABEL, AGENT_STATUS_SHORT_LABEL, AGENT_STATUS_TONE, addClusterPath, effectiveAgentStatus, formatAgo, useNow } from './agent';

interface AgentBadgeProps {
  clusterId: string;
  clusterName: string;
  status: AgentStatus;
  lastHeartbeatAt?: string | null;
  /** The agent reported that it is in safe mode (control plane was unreachable). */
  safeMode?: boolean;
  /** Owners and admins get an "Install agent" link when there is no working agent. */
  canInstall?: boolean;
  /** Inside a clickable table row under an "Agent" header: short labels, stacked, and links must not open the row. */
  inRow?: boolean;
}

/**
 * The in-cluster agent at a glance: connected (green, with the heartbeat's age), waiting for the
 * first heartbeat, disconnected (red), revoked or not installed (with a link to the wizard).
 */
export function AgentBadge({ clusterId, clusterName, status, lastHeartbeatAt, safeMode = false, canInstall = false, inRow = false }: AgentBadgeProps) {
  const now = useNow();
  const shown = effectiveAgentStatus(status, lastHeartbeatAt, now);
  const install = canInstall && (shown === 'not_installed' || shown === 'revoked');
  const ago = lastHeartbeatAt != null && (shown === 'connected' || shown === 'disconnected') ? formatAgo(lastHeartbeatAt, now) : null;
  return (
    <span className={inRow ? 'agent-badge agent-badge--stacked' : 'agent-badge'} data-status={shown}>
      <span title={[AGENT_STATUS_LABEL[shown], lastHeartbeatAt != null && `last heartbeat ${formatDateTime(lastHeartbeatAt)}`].filter(Boolean).join(', ')}>
        <Badge tone={AGENT_STATUS_TONE[shown]}>
          <span className={`agent-dot agent-dot--${shown}`} aria-hidden="true" />
          {inRow && <span className="sr-only">Agent </span>}
          {(inRow ? AGENT_STATUS_SHORT_LABEL : AGENT_STATUS_LABEL)[shown]}
        </Badge>
      </span>
      {ago !== null && <span className={inRow ? 'muted' : 'muted nowrap'}>last heartbeat {ago}</span>}
      {safeMode && (
        <span title="The agent lost the control plane and runs no new commands until it is back">
          <Badge tone="warning">⚠ Safe mode</Badge>
        </span>
      )}
      {install && (
        <Link
          to={addClusterPath(clusterId)}
          className="agent-badge__link"
          aria-label={`Install agent on ${clusterName}`}
          onClick={inRow ? (event) => event.stopPropagation() : undefined}
        >
          Install agent
        </Link>
      )}
    </span>
  );
}
