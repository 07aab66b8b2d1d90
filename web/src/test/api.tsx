import { render } from '@testing-library/react';
import { MemoryRouter } from 'react-router-dom';
import { App, ROUTER_FUTURE } from '../App';
import { createQueryClient } from '../api/queryClient';
import type { Account, ClusterSummary, InstanceSummary, Me, Role, ScanStatus } from '../api/types';
import { storeTokens } from '../auth/session';

type Handler = (request: Request, url: URL) => Response | Promise<Response>;

export function json(body: unknown, init: ResponseInit = {}): Response {
  return new Response(JSON.stringify(body), {
    ...init,
    headers: { 'Content-Type': 'application/json', ...init.headers },
  });
}

export function apiError(status: number, code: string, message: string, field?: string, headers?: HeadersInit): Response {
  return json({ error: { code, message, ...(field ? { field } : {}) } }, { status, headers });
}

/** JSON bodies are parsed; anything else (a multipart upload) is kept as text. */
function parseBody(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * Replaces global fetch with a router keyed by "METHOD /path". Every request is recorded;
 * an unmatched request fails the test loudly with a 599.
 */
export function mockApi(handlers: Record<string, Handler>) {
  const calls: { method: string; url: URL; body: unknown; authorization: string | null }[] = [];
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const url = new URL(request.url);
    const text = await request.clone().text();
    calls.push({ method: request.method, url, body: parseBody(text), authorization: request.headers.get('Authorization') });
    const handler = handlers[`${request.method} ${url.pathname}`];
    if (!handler) return apiError(599, 'unmocked', `No mock for ${request.method} ${url.pathname}`);
    return handler(request, url);
  });
  vi.stubGlobal('fetch', fetchMock);
  return { calls, fetchMock };
}

export function makeMe(role: Role = 'owner', overrides: Partial<Me> = {}): Me {
  return {
    user: { id: 'u-self', email: 'me@acme.test', created_at: '2024-01-01T00:00:00Z' },
    organization: { id: 'org-1', name: 'Acme Corp', created_at: '2024-01-01T00:00:00Z' },
    role,
    route: 'dashboard',
    onboarding_dismissed: true,
    ...overrides,
  };
}

export const tokens = { access_token: 'access-1', refresh_token: 'refresh-1', token_type: 'Bearer' as const, expires_in: 900 };

export function signIn(): void {
  storeTokens(tokens);
}

export function renderApp(path: string) {
  return render(
    <MemoryRouter initialEntries={[path]} future={ROUTER_FUTURE}>
      <App queryClient={createQueryClient()} />
    </MemoryRouter>,
  );
}

export function makeAccount(overrides: Partial<Account> = {}): Account {
  return {
    id: 'acc-1',
    name: 'Production',
    provider: 'aws',
    aws_account_id_masked: '1234-****-****',
    region: 'us-east-1',
    method: 'role',
    status: 'active',
    last_sync_at: '2024-05-01T10:00:00Z',
    created_at: '2024-05-01T09:00:00Z',
    ...overrides,
  };
}

/** The `pending` row the server creates at signup; the app must not show it as an account. */
export const placeholderAccount: Account = {
  id: 'acc-placeholder',
  name: 'Pending account',
  provider: 'aws',
  status: 'pending',
  created_at: '2024-05-01T09:00:00Z',
};

export function makeScan(overrides: Partial<ScanStatus> = {}): ScanStatus {
  return {
    account_id: 'acc-1',
    status: 'active',
    phase: 'done',
    progress: 100,
    counts: { instances: 29, clusters: 3, volumes: 32, snapshots: 7 },
    ...overrides,
  };
}

export function makeCluster(overrides: Partial<ClusterSummary> = {}): ClusterSummary {
  return {
    id: 'c-1',
    name: 'prod-eks',
    account_id: 'acc-1',
    account_name: 'Production',
    provider: 'aws',
    region: 'us-east-1',
    azs: ['us-east-1a', 'us-east-1b'],
    kubernetes_version: '1.34',
    end_of_life: false,
    status: 'active',
    environment: 'production',
    node_count: 10,
    pod_count: 120,
    monthly_run_rate: 2000,
    monthly_on_demand_equivalent: 3000,
    spot_share: 0.6,
    cpu_allocatable_millicores: 40_000,
    cpu_requested_millicores: 30_000,
    cpu_used_millicores: 15_000,
    memory_allocatable_mib: 160 * 1024,
    memory_requested_mib: 120 * 1024,
    memory_used_mib: 90 * 1024,
    efficiency_score: 0.7,
    efficiency_grade: 'B',
    health_score: 90,
    last_sync: '2024-05-01T10:00:00Z',
    trend_24h: {
      hours: ['2024-05-01T08:00:00Z', '2024-05-01T09:00:00Z', '2024-05-01T10:00:00Z'],
      nodes: [9, 10, 10],
      pods: [110, 118, 120],
      monthly_cost: [2100, 2050, 2000],
      monthly_cost_change: -0.0476,
    },
    ...overrides,
    // No `agent_status` unless a test sets one: the cluster pages then show no agent UI.
  } as ClusterSummary;
}

export function makeInstance(overrides: Partial<InstanceSummary> = {}): InstanceSummary {
  return {
    id: 'inst-1',
    instance_id: 'i-0abc123',
    cluster_id: 'c-1',
    instance_type: 'm5.large',
    lifecycle: 'spot',
    state: 'running',
    az: 'us-east-1a',
    pool: 'm5.large@us-east-1a',
    node_group: 'workers',
    hourly_price: 0.04,
    monthly_cost: 29.2,
    on_demand_hourly: 0.096,
    pool_flagged: false,
    launched_at: '2024-04-01T08:00:00Z',
    ...overrides,
  };
}
