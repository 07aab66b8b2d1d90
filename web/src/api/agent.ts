// The in-cluster agent's tenant routes: install tokens, status and commands, and registering a
// cluster that discovery did not find. Hand-written until `openapi.json` describes these routes;
// calls go through the same authenticated fetch as the generated client.
import { authFetch } from './client';
import { toApiError } from './errors';
import type { ClusterSummary } from './types';

export const AGENT_STATUSES = ['not_installed', 'waiting', 'connected', 'disconnected', 'revoked'] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];

export function isAgentStatus(value: unknown): value is AgentStatus {
  return typeof value === 'string' && (AGENT_STATUSES as readonly string[]).includes(value);
}

/** Health of one of the agent's watches (nodes, pods, PDBs, events). */
export interface AgentWatch {
  resource: string;
  healthy: boolean;
  objects: number;
  last_event_at: string | null;
  last_error: string | null;
  /** Full re-lists since the agent started (a 410 Gone forces one). */
  relists: number;
}

/** The agent's own safe mode: control plane unreachable, so it starts no new command. */
export interface SafeModeReport {
  entered_at: string;
  exited_at: string | null;
  reason: string;
  /** Whether the agent is in safe mode now (else this is the last one it reported). */
  active?: boolean;
}

/** `GET /api/clusters/{id}/agent`. */
export interface AgentInfo {
  status: AgentStatus;
  connected: boolean;
  last_heartbeat_at: string | null;
  agent_version: string | null;
  kubernetes_version: string | null;
  protocol_version: number | null;
  watches: AgentWatch[];
  /** Whether the metrics.k8s.io API answered; null before the first heartbeat. */
  metrics_available: boolean | null;
  safe_mode: SafeModeReport | null;
  token_prefix: string | null;
  token_created_at: string | null;
  nodes: number;
  pods: number;
  pdbs: number;
  pending_pods: number;
}

export const INSTALL_METHODS = ['helm', 'kubectl', 'terraform'] as const;
export type InstallMethod = (typeof INSTALL_METHODS)[number];

/** `POST /api/clusters/{id}/agent` and `/agent/rotate`: the token appears in this answer only. */
export interface AgentToken {
  token: string;
  token_prefix: string;
  cluster_id: string;
  control_plane_url: string;
  install: Record<InstallMethod, string>;
}

/** One pod's fate during a drain. */
export interface AgentEviction {
  pod: string;
  outcome: string;
  retries: number;
  message?: string | null;
}

/** A command queued for the agent (cordon, drain, …) and its outcome. */
export interface AgentCommand {
  id: string;
  kind: string;
  /** `pending`, `running`, `succeeded`, `failed` or `expired`. */
  status: string;
  /** The node or workload the command acts on. */
  target?: string;
  created_at: string;
  started_at?: string | null;
  finished_at?: string | null;
  deadline?: string;
  outcome?: string | null;
  message?: string | null;
  reason?: string | null;
  evictions?: AgentEviction[];
  /** Older servers: the result as JSON. */
  result?: unknown;
}

export interface RegisterClusterRequest {
  account_id: string;
  name: string;
  region?: string;
}

export interface RegisteredCluster {
  id: string;
  name: string;
  account_id: string;
  region: string;
  provider: string;
  agent_status: AgentStatus;
}

/** What the cluster list and detail add for the agent (optional until every server sends it). */
export interface ClusterAgentFields {
  agent_status?: string | null;
  agent_last_heartbeat_at?: string | null;
}

/** The cluster's agent status, or null when the server does not report one. */
export function clusterAgentStatus(cluster: ClusterSummary): AgentStatus | null {
  const value = (cluster as ClusterSummary & ClusterAgentFields).agent_status;
  return isAgentStatus(value) ? value : null;
}

export function clusterLastHeartbeat(cluster: ClusterSummary): string | null {
  return (cluster as ClusterSummary & ClusterAgentFields).agent_last_heartbeat_at ?? null;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const request = new Request(new URL(path, window.location.origin), {
    method,
    headers: body === undefined ? undefined : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const response = await authFetch(request);
  const text = response.status === 204 ? '' : await response.text();
  let parsed: unknown = undefined;
  if (text !== '') {
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      parsed = undefined;
    }
  }
  if (!response.ok) throw toApiError(response, parsed);
  return parsed as T;
}

const clusterPath = (clusterId: string) => `/api/clusters/${encodeURIComponent(clusterId)}`;

export const agentApi = {
  status: (clusterId: string) => call<AgentInfo>('GET', `${clusterPath(clusterId)}/agent`),
  commands: async (clusterId: string): Promise<AgentCommand[]> => {
    const body = await call<AgentCommand[] | { items: AgentCommand[] }>('GET', `${clusterPath(clusterId)}/agent/commands`);
    return Array.isArray(body) ? body : (body?.items ?? []);
  },
  /** 409 when the cluster already has an active token: rotate instead. */
  createToken: (clusterId: string) => call<AgentToken>('POST', `${clusterPath(clusterId)}/agent`, {}),
  /** Issues a new token and revokes the old one at once. */
  rotateToken: (clusterId: string) => call<AgentToken>('POST', `${clusterPath(clusterId)}/agent/rotate`, {}),
  revoke: (clusterId: string) => call<void>('DELETE', `${clusterPath(clusterId)}/agent`),
  /** Adds a cluster that discovery did not find; answers with the cluster. */
  register: (body: RegisterClusterRequest) => call<RegisteredCluster>('POST', '/api/clusters/register', body),
};
