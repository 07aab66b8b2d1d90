import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { agentApi, type AgentInfo, type AgentStatus, type RegisterClusterRequest } from '../../api/agent';
import { agentCommandsKey, agentHeartbeatsKey, agentKey, inventoryKey } from '../../api/keys';
import type { BadgeTone } from '../../components';
import { useLiveConnected } from '../../live/useLiveEvents';

/** Without live events, views waiting for an agent re-read its status this often. */
export const AGENT_POLL_MS = 5000;
/** With live events, `agent.heartbeat` refreshes the status; this slower re-read is a safety net. */
const AGENT_LIVE_POLL_MS = 15_000;
/** The server's rule: an agent is connected while its last heartbeat is younger than this. */
export const HEARTBEAT_FRESH_MS = 60_000;

/**
 * The agent's status. `waitForHeartbeat` (the wizard's last step) keeps re-reading until the
 * agent is connected: every 5 s while the live stream is down, every 15 s while it is up (then a
 * heartbeat event refreshes it at once).
 */
export function useAgent(clusterId: string, { waitForHeartbeat = false }: { waitForHeartbeat?: boolean } = {}) {
  const live = useLiveConnected();
  return useQuery({
    queryKey: agentKey(clusterId),
    queryFn: () => agentApi.status(clusterId),
    enabled: clusterId !== '',
    staleTime: 0,
    refetchInterval: (query) => {
      if (!waitForHeartbeat || query.state.data?.status === 'connected') return false;
      return live ? AGENT_LIVE_POLL_MS : AGENT_POLL_MS;
    },
  });
}

export function useAgentCommands(clusterId: string) {
  return useQuery({
    queryKey: agentCommandsKey(clusterId),
    queryFn: () => agentApi.commands(clusterId),
  });
}

/** Heartbeat times seen on the live stream in this tab (cluster id → ISO time). */
export function useLiveHeartbeats(): Record<string, string> {
  return useQuery({
    queryKey: agentHeartbeatsKey,
    queryFn: () => ({}) as Record<string, string>,
    initialData: {} as Record<string, string>,
    staleTime: Infinity,
    gcTime: Infinity,
  }).data;
}

/** Token issue, rotation and revocation refresh the agent and the cluster list's `agent_status`. */
function useAgentMutation<TVariables, TData>(mutationFn: (variables: TVariables) => Promise<TData>, clusterOf: (variables: TVariables) => string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn,
    onSuccess: (_data, variables) => {
      void queryClient.invalidateQueries({ queryKey: agentKey(clusterOf(variables)) });
      void queryClient.invalidateQueries({ queryKey: [...inventoryKey, 'clusters'] });
    },
  });
}

export const useCreateAgentToken = () => useAgentMutation((clusterId: string) => agentApi.createToken(clusterId), (id) => id);
export const useRotateAgentToken = () => useAgentMutation((clusterId: string) => agentApi.rotateToken(clusterId), (id) => id);
export const useRevokeAgent = () => useAgentMutation((clusterId: string) => agentApi.revoke(clusterId), (id) => id);

export function useRegisterCluster() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: RegisterClusterRequest) => agentApi.register(body),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: [...inventoryKey, 'clusters'] }),
  });
}

/** The current time, re-rendered every `intervalMs` (for "12s ago" labels). */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), intervalMs);
    return () => window.clearInterval(timer);
  }, [intervalMs]);
  return now;
}

/** "just now", "12s ago", "3m ago", "2h ago", "4d ago". */
export function formatAgo(iso: string, now: number): string {
  const at = new Date(iso).getTime();
  if (Number.isNaN(at)) return iso;
  const seconds = Math.max(0, Math.round((now - at) / 1000));
  if (seconds < 2) return 'just now';
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ago`;
  return `${Math.floor(hours / 24)}d ago`;
}

/**
 * What to show: the server's status, except that a "connected" agent whose last heartbeat is
 * older than a minute (no newer read yet) shows as disconnected.
 */
export function effectiveAgentStatus(status: AgentStatus, lastHeartbeatAt: string | null | undefined, now: number): AgentStatus {
  if (status !== 'connected' || lastHeartbeatAt == null) return status;
  const at = new Date(lastHeartbeatAt).getTime();
  return !Number.isNaN(at) && now - at > HEARTBEAT_FRESH_MS ? 'disconnected' : status;
}

export const AGENT_STATUS_LABEL: Record<AgentStatus, string> = {
  connected: 'Agent connected',
  waiting: 'Waiting for agent',
  disconnected: 'Agent disconnected',
  not_installed: 'No agent',
  revoked: 'Agent token revoked',
};

/** In the cluster list, under an "Agent" header. */
export const AGENT_STATUS_SHORT_LABEL: Record<AgentStatus, string> = {
  connected: 'Connected',
  waiting: 'Waiting',
  disconnected: 'Disconnected',
  not_installed: 'Not installed',
  revoked: 'Revoked',
};

export const AGENT_STATUS_TONE: Record<AgentStatus, BadgeTone> = {
  connected: 'success',
  waiting: 'info',
  disconnected: 'danger',
  not_installed: 'neutral',
  revoked: 'danger',
};

/** Safe mode the agent is in right now (entered and not yet left). */
export function activeSafeMode(agent: Pick<AgentInfo, 'safe_mode'> | undefined): AgentInfo['safe_mode'] {
  const report = agent?.safe_mode;
  if (report == null) return null;
  return (report.active ?? report.exited_at == null) ? report : null;
}

/** The wizard for one cluster (the "Install agent" links). */
export function addClusterPath(clusterId?: string): string {
  return clusterId === undefined ? ADD_CLUSTER_PATH : `${ADD_CLUSTER_PATH}?cluster=${encodeURIComponent(clusterId)}`;
}

export const ADD_CLUSTER_PATH = '/clusters/add';
