import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { MemoryRouter } from 'react-router-dom';
import type { AgentCommand, AgentInfo, AgentStatus, AgentToken } from '../../api/agent';
import type { ClusterSummary } from '../../api/types';
import { ROUTER_FUTURE } from '../../App';
import { apiError, json, makeAccount, makeCluster, makeMe, mockApi, renderApp, signIn } from '../../test/api';
import { AgentBadge } from './AgentBadge';
import { commandResultSummary } from './AgentCard';
import { sortForInstall } from './AddClusterPage';
import { activeSafeMode, effectiveAgentStatus, formatAgo } from './agent';

/** Stand-in for the browser's EventSource that the test drives by hand. */
class FakeEventSource {
  static instances: FakeEventSource[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((message: MessageEvent<string>) => void) | null = null;
  onerror: (() => void) | null = null;

  constructor(readonly url: string) {
    FakeEventSource.instances.push(this);
  }

  close() {}

  open() {
    act(() => this.onopen?.());
  }

  emit(type: string, data: unknown) {
    act(() => this.onmessage?.(new MessageEvent('message', { data: JSON.stringify({ type, ts: new Date().toISOString(), data }) })));
  }

  static latest(): FakeEventSource {
    const source = FakeEventSource.instances.at(-1);
    if (!source) throw new Error('no EventSource was opened');
    return source;
  }
}

const withAgent = (status: AgentStatus, overrides: Partial<ClusterSummary> = {}): ClusterSummary =>
  ({ ...makeCluster(overrides), agent_status: status }) as ClusterSummary;

const clusters = [
  withAgent('connected', { id: 'c-1', name: 'prod-eks' }),
  withAgent('not_installed', { id: 'c-2', name: 'staging-eks', node_count: 4 }),
  withAgent('disconnected', { id: 'c-3', name: 'analytics' }),
];

function token(value: string, clusterId = 'c-2'): AgentToken {
  return {
    token: value,
    token_prefix: value.slice(0, 8),
    cluster_id: clusterId,
    control_plane_url: 'https://spot.example.com',
    install: {
      helm: `helm install spot-agent oci://registry/spot-agent --set token=${value} --set clusterId=${clusterId}`,
      kubectl: `curl -sSf 'https://spot.example.com/api/agent/v1/manifests?token=${value}' | kubectl apply -f -`,
      terraform: `resource "helm_release" "spot_agent" {\n  set { name = "token" value = "${value}" }\n}`,
    },
  };
}

function agentInfo(overrides: Partial<AgentInfo> = {}): AgentInfo {
  return {
    status: 'waiting',
    connected: false,
    last_heartbeat_at: null,
    agent_version: null,
    kubernetes_version: null,
    protocol_version: null,
    watches: [],
    metrics_available: null,
    safe_mode: null,
    token_prefix: 'spa_abcd',
    token_created_at: '2024-05-01T10:00:00Z',
    nodes: 0,
    pods: 0,
    pdbs: 0,
    pending_pods: 0,
    ...overrides,
  };
}

const connectedAgent = (overrides: Partial<AgentInfo> = {}) =>
  agentInfo({
    status: 'connected',
    connected: true,
    last_heartbeat_at: new Date(Date.now() - 5000).toISOString(),
    agent_version: '1.2.0',
    kubernetes_version: 'v1.30.4',
    protocol_version: 1,
    metrics_available: true,
    nodes: 14,
    pods: 230,
    pdbs: 6,
    ...overrides,
  });

function setupWizard(handlers: Parameters<typeof mockApi>[0] = {}) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe('owner')),
    'GET /api/clusters': () => json({ items: clusters, total_monthly_run_rate: 6000 }),
    'GET /api/accounts': () => json({ items: [makeAccount(), makeAccount({ id: 'acc-2', name: 'Lab', region: 'eu-west-1' })] }),
    ...handlers,
  });
}

describe('Add cluster wizard', () => {
  afterEach(() => {
    FakeEventSource.instances = [];
  });

  it('lists clusters without an agent first and shows each method’s command with the token', async () => {
    const api = setupWizard({ 'POST /api/clusters/c-2/agent': () => json(token('spa_secret_123'), { status: 201 }) });
    const user = userEvent.setup();
    renderApp('/clusters');

    await user.click(await screen.findByRole('link', { name: '+ Add cluster' }));
    const options = await screen.findAllByRole('radio');
    expect(options.map((option) => option.closest('label')?.querySelector('.cell-title')?.textContent)).toEqual(['staging-eks', 'analytics', 'prod-eks']);
    expect(screen.getByRole('button', { name: 'Connect' })).toBeDisabled();

    await user.click(screen.getByRole('radio', { name: /staging-eks/ }));
    await user.click(screen.getByRole('button', { name: 'Connect' }));

    expect(await screen.findByRole('heading', { name: 'Install the agent on staging-eks' })).toHaveFocus();
    expect(api.calls.filter((call) => call.method === 'POST').map((call) => call.url.pathname)).toEqual(['/api/clusters/c-2/agent']);
    expect(screen.getByText('This token is shown once')).toBeInTheDocument();

    const expected: [string, RegExp][] = [
      ['Helm', /^helm install spot-agent .*--set token=spa_secret_123/],
      ['kubectl', /manifests\?token=spa_secret_123' \| kubectl apply -f -$/],
      ['Terraform', /resource "helm_release" "spot_agent"[\s\S]*value = "spa_secret_123"/],
    ];
    for (const [method, command] of expected) {
      await user.click(screen.getByRole('tab', { name: method }));
      expect(screen.getByRole('tab', { name: method })).toHaveAttribute('aria-selected', 'true');
      expect(screen.getByLabelText(`${method} install command`).textContent).toMatch(command);
    }
    // Arrow keys move between the method tabs.
    await user.keyboard('{ArrowRight}');
    expect(screen.getByRole('tab', { name: 'Helm' })).toHaveAttribute('aria-selected', 'true');
    expect(screen.getByRole('tab', { name: 'Helm' })).toHaveFocus();

    const permissions = screen.getByRole('region', { name: 'Agent permissions' });
    expect(permissions).toHaveTextContent(/outbound HTTPS/);
    expect(permissions).toHaveTextContent(/Eviction API, respecting PodDisruptionBudgets/);
    expect(permissions).toHaveTextContent(/Reads Secrets/);

    // The copy button copies exactly the command shown.
    const writeText = vi.fn(async () => undefined);
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    await user.click(screen.getByRole('button', { name: 'Copy command' }));
    expect(writeText).toHaveBeenCalledWith(token('spa_secret_123').install.helm);
  });

  it('offers to rotate when the cluster already has an active token', async () => {
    const api = setupWizard({
      'POST /api/clusters/c-3/agent': () => apiError(409, 'conflict', 'cluster already has an active agent token'),
      'POST /api/clusters/c-3/agent/rotate': () => json(token('spa_rotated_456', 'c-3'), { status: 201 }),
    });
    const user = userEvent.setup();
    renderApp('/clusters/add?cluster=c-3');

    // Preselected from the "Install agent" link.
    expect(await screen.findByRole('radio', { name: /analytics/ })).toBeChecked();
    await user.click(screen.getByRole('button', { name: 'Connect' }));

    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('analytics already has an active agent token');
    expect(alert).toHaveTextContent(/current token stops working at once/);
    await user.click(within(alert).getByRole('button', { name: 'Rotate token' }));

    expect(await screen.findByRole('heading', { name: 'Install the agent on analytics' })).toBeInTheDocument();
    expect(screen.getByRole('tabpanel')).toHaveTextContent('--set token=spa_rotated_456');
    expect(api.calls.filter((call) => call.method === 'POST').map((call) => call.url.pathname)).toEqual([
      '/api/clusters/c-3/agent',
      '/api/clusters/c-3/agent/rotate',
    ]);
  });

  it('registers a cluster discovery did not find, then issues its token', async () => {
    const registered = makeCluster({ id: 'c-9', name: 'edge-eks', account_id: 'acc-2', region: 'eu-west-1' });
    const api = setupWizard({
      'POST /api/clusters/register': () => json(registered, { status: 201 }),
      'POST /api/clusters/c-9/agent': () => json(token('spa_new_789', 'c-9'), { status: 201 }),
    });
    const user = userEvent.setup();
    renderApp('/clusters/add');

    await user.click(await screen.findByRole('button', { name: 'Register by name' }));
    const form = await screen.findByRole('form', { name: 'Register a cluster' });
    expect(within(form).getByLabelText('Region')).toHaveValue('us-east-1');
    await user.click(within(form).getByRole('button', { name: 'Register and connect' }));
    expect(await within(form).findByText('Enter the cluster name.')).toBeInTheDocument();

    await user.selectOptions(within(form).getByLabelText('Account'), 'Lab');
    await user.type(within(form).getByLabelText('Cluster name'), '  edge-eks ');
    await user.clear(within(form).getByLabelText('Region'));
    await user.type(within(form).getByLabelText('Region'), 'eu-west-1');
    await user.click(within(form).getByRole('button', { name: 'Register and connect' }));

    expect(await screen.findByRole('heading', { name: 'Install the agent on edge-eks' })).toBeInTheDocument();
    expect(api.calls.find((call) => call.url.pathname === '/api/clusters/register')?.body).toEqual({ account_id: 'acc-2', name: 'edge-eks', region: 'eu-west-1' });
    expect(screen.getByRole('tabpanel')).toHaveTextContent('spa_new_789');
  });

  it('shows a server field error under the input', async () => {
    setupWizard({ 'POST /api/clusters/register': () => apiError(409, 'conflict', 'A cluster named prod-eks is already registered.', 'name') });
    const user = userEvent.setup();
    renderApp('/clusters/add');
    await user.click(await screen.findByRole('button', { name: 'Register by name' }));
    const form = await screen.findByRole('form', { name: 'Register a cluster' });
    await user.type(within(form).getByLabelText('Cluster name'), 'prod-eks');
    await user.click(within(form).getByRole('button', { name: 'Register and connect' }));
    expect(await within(form).findByText('A cluster named prod-eks is already registered.')).toBeInTheDocument();
    expect(within(form).getByLabelText('Cluster name')).toHaveAttribute('aria-invalid', 'true');
  });

  it('turns the sonar green when an agent.heartbeat event arrives', async () => {
    vi.stubGlobal('EventSource', FakeEventSource);
    let status: AgentInfo = agentInfo();
    const api = setupWizard({
      'POST /api/clusters/c-2/agent': () => json(token('spa_secret_123'), { status: 201 }),
      'GET /api/clusters/c-2/agent': () => json(status),
    });
    const user = userEvent.setup();
    renderApp('/clusters/add?cluster=c-2');
    FakeEventSource.latest().open();

    await user.click(await screen.findByRole('button', { name: 'Connect' }));
    await user.click(await screen.findByRole('button', { name: 'I ran it: wait for the agent' }));

    const sonar = await screen.findByRole('status', { name: 'Agent connection' });
    expect(await within(sonar).findByText('Waiting for first heartbeat…')).toBeInTheDocument();
    expect(sonar).not.toHaveClass('sonar--connected');
    const reads = () => api.calls.filter((call) => call.method === 'GET' && call.url.pathname === '/api/clusters/c-2/agent').length;
    await waitFor(() => expect(reads()).toBe(1));

    // Another cluster's heartbeat changes nothing.
    status = connectedAgent();
    FakeEventSource.latest().emit('agent.heartbeat', { cluster_id: 'c-1' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(reads()).toBe(1);

    FakeEventSource.latest().emit('agent.heartbeat', { cluster_id: 'c-2', agent_version: '1.2.0' });
    expect(await within(sonar).findByText('Connection established')).toBeInTheDocument();
    expect(sonar).toHaveClass('sonar--connected');
    expect(sonar).toHaveTextContent('Agent 1.2.0 · Kubernetes v1.30.4');
    expect(sonar).toHaveTextContent('14 nodes, 230 pods and 6 disruption budgets discovered');
    expect(screen.getByRole('heading', { name: 'Agent connected' })).toBeInTheDocument();

    api.fetchMock.mockClear();
    mockApi({
      'GET /api/auth/me': () => json(makeMe('owner')),
      'GET /api/clusters/c-2': () => apiError(404, 'not_found', 'cluster not found'),
    });
    await user.click(screen.getByRole('button', { name: 'Go to cluster' }));
    expect(await screen.findByText('Cluster not found')).toBeInTheDocument();
  });

  it('offers to start again when the token is revoked while waiting', async () => {
    setupWizard({
      'POST /api/clusters/c-2/agent': () => json(token('spa_secret_123'), { status: 201 }),
      'GET /api/clusters/c-2/agent': () => json(agentInfo({ status: 'revoked' })),
    });
    const user = userEvent.setup();
    renderApp('/clusters/add?cluster=c-2');
    await user.click(await screen.findByRole('button', { name: 'Connect' }));
    await user.click(await screen.findByRole('button', { name: 'I ran it: wait for the agent' }));
    const sonar = await screen.findByRole('status', { name: 'Agent connection' });
    expect(await within(sonar).findByText("This cluster's agent token was revoked")).toBeInTheDocument();
    expect(sonar).toHaveClass('sonar--failed');
    await user.click(within(sonar).getByRole('button', { name: 'Start again' }));
    expect(await screen.findByRole('heading', { name: 'Which cluster?' })).toBeInTheDocument();
  });

  it('keeps viewers out', async () => {
    signIn();
    mockApi({ 'GET /api/auth/me': () => json(makeMe('viewer')), 'GET /api/clusters': () => json({ items: clusters, total_monthly_run_rate: 0 }) });
    renderApp('/clusters/add');
    expect(await screen.findByText('Only owners and admins can install the agent')).toBeInTheDocument();
    expect(screen.queryByRole('radio')).not.toBeInTheDocument();
  });
});

function renderBadge(props: Partial<Parameters<typeof AgentBadge>[0]> & { status: AgentStatus }) {
  return render(
    <MemoryRouter future={ROUTER_FUTURE}>
      <AgentBadge clusterId="c-2" clusterName="staging-eks" canInstall {...props} />
    </MemoryRouter>,
  );
}

describe('AgentBadge', () => {
  it('renders each status with its tone', () => {
    const ago = (seconds: number) => new Date(Date.now() - seconds * 1000).toISOString();
    const cases: [AgentStatus, string | null, string, string][] = [
      ['connected', ago(12), 'Agent connected', 'badge--success'],
      ['waiting', null, 'Waiting for agent', 'badge--info'],
      ['disconnected', ago(300), 'Agent disconnected', 'badge--danger'],
      ['not_installed', null, 'No agent', 'badge'],
      ['revoked', null, 'Agent token revoked', 'badge--danger'],
    ];
    for (const [status, heartbeat, label, tone] of cases) {
      const { container, unmount } = renderBadge({ status, lastHeartbeatAt: heartbeat });
      const badge = screen.getByText(label);
      expect(badge.closest('.badge')).toHaveClass(tone);
      expect(container.querySelector('.agent-badge')).toHaveAttribute('data-status', status);
      unmount();
    }
  });

  it('shows the heartbeat age, the install link and the safe mode warning', () => {
    renderBadge({ status: 'connected', lastHeartbeatAt: new Date(Date.now() - 12_000).toISOString(), safeMode: true });
    expect(screen.getByText('last heartbeat 12s ago')).toBeInTheDocument();
    expect(screen.getByText('⚠ Safe mode')).toBeInTheDocument();
    expect(screen.queryByRole('link')).not.toBeInTheDocument();
  });

  it('links to the wizard for that cluster when there is no agent', () => {
    const { unmount } = renderBadge({ status: 'not_installed' });
    expect(screen.getByRole('link', { name: 'Install agent on staging-eks' })).toHaveAttribute('href', '/clusters/add?cluster=c-2');
    unmount();
    renderBadge({ status: 'not_installed', canInstall: false });
    expect(screen.queryByRole('link')).not.toBeInTheDocument();
  });

  it('shows a connected agent whose heartbeat is over a minute old as disconnected', () => {
    renderBadge({ status: 'connected', lastHeartbeatAt: new Date(Date.now() - 90_000).toISOString() });
    expect(screen.getByText('Agent disconnected')).toBeInTheDocument();
    expect(screen.getByText('last heartbeat 1m ago')).toBeInTheDocument();
  });
});

describe('agent helpers', () => {
  it('formats ages and applies the 60-second freshness rule', () => {
    const now = Date.parse('2024-05-01T10:00:00Z');
    expect(formatAgo('2024-05-01T10:00:00Z', now)).toBe('just now');
    expect(formatAgo('2024-05-01T09:59:15Z', now)).toBe('45s ago');
    expect(formatAgo('2024-05-01T09:57:00Z', now)).toBe('3m ago');
    expect(formatAgo('2024-05-01T07:00:00Z', now)).toBe('3h ago');
    expect(formatAgo('2024-04-27T10:00:00Z', now)).toBe('4d ago');
    expect(effectiveAgentStatus('connected', '2024-05-01T09:59:10Z', now)).toBe('connected');
    expect(effectiveAgentStatus('connected', '2024-05-01T09:58:59Z', now)).toBe('disconnected');
    expect(effectiveAgentStatus('waiting', null, now)).toBe('waiting');
  });

  it('tells a current safe mode from a past one', () => {
    const report = { entered_at: '2024-05-01T09:00:00Z', exited_at: null, reason: 'control plane unreachable' };
    expect(activeSafeMode({ safe_mode: report })).toBe(report);
    expect(activeSafeMode({ safe_mode: { ...report, exited_at: '2024-05-01T09:05:00Z' } })).toBeNull();
    expect(activeSafeMode({ safe_mode: { ...report, active: false } })).toBeNull();
    expect(activeSafeMode({ safe_mode: null })).toBeNull();
  });

  it('sorts clusters that need an agent first', () => {
    expect(sortForInstall(clusters).map((cluster) => cluster.id)).toEqual(['c-2', 'c-3', 'c-1']);
    // No agent status reported counts as not installed.
    expect(sortForInstall([clusters[0] as ClusterSummary, makeCluster({ id: 'x', name: 'zeta' })]).map((cluster) => cluster.id)).toEqual(['x', 'c-1']);
  });

  it('summarises a command result', () => {
    expect(commandResultSummary({})).toBe('—');
    expect(commandResultSummary({ outcome: 'succeeded', message: 'node ip-10-0-1-23 cordoned' })).toBe('node ip-10-0-1-23 cordoned');
    expect(commandResultSummary({ outcome: 'failed', reason: 'deadline passed; node left cordoned' })).toBe('deadline passed; node left cordoned');
    expect(
      commandResultSummary({
        message: 'drained',
        evictions: [
          { pod: 'default/web-1', outcome: 'evicted', retries: 2 },
          { pod: 'default/web-2', outcome: 'evicted', retries: 0 },
          { pod: 'kube-system/aws-node-x', outcome: 'skipped', retries: 0, message: 'DaemonSet pod' },
        ],
      }),
    ).toBe('drained · 2 of 3 pods evicted');
    expect(commandResultSummary({ result: { evicted: 3 } })).toBe('{"evicted":3}');
  });
});

describe('Agent in the cluster list and detail', () => {
  it('shows a badge per cluster and an install link that opens the wizard for that cluster', async () => {
    vi.stubGlobal('EventSource', FakeEventSource);
    setupWizard();
    const user = userEvent.setup();
    renderApp('/clusters');
    FakeEventSource.latest().open();

    const table = await screen.findByRole('table', { name: 'Clusters' });
    const analytics = within(table).getByRole('row', { name: /analytics/ });
    expect(within(analytics).getByText('Disconnected').closest('.badge')).toHaveClass('badge--danger');

    // A heartbeat marks the cluster connected in the list without a re-read.
    FakeEventSource.latest().emit('agent.heartbeat', { cluster_id: 'c-3' });
    expect(await within(analytics).findByText('Connected')).toBeInTheDocument();
    expect(within(analytics).getByText('Connected').closest('.badge')).toHaveClass('badge--success');
    expect(within(analytics).getByText(/^last heartbeat (just now|\ds ago)$/)).toBeInTheDocument();

    const staging = within(table).getByRole('row', { name: /staging-eks/ });
    expect(within(staging).getByText('Not installed')).toBeInTheDocument();
    await user.click(within(staging).getByRole('link', { name: 'Install agent on staging-eks' }));
    expect(await screen.findByRole('radio', { name: /staging-eks/ })).toBeChecked();
  });

  const commands: AgentCommand[] = [
    {
      id: 'cmd-2',
      kind: 'drain',
      target: 'ip-10-0-1-23.ec2.internal',
      status: 'failed',
      created_at: '2024-05-01T10:02:00Z',
      started_at: '2024-05-01T10:02:01Z',
      finished_at: '2024-05-01T10:07:01Z',
      outcome: 'failed',
      reason: 'deadline passed: PDB web allows no disruption',
      evictions: [{ pod: 'default/web-1', outcome: 'blocked', retries: 12 }],
    },
    { id: 'cmd-1', kind: 'cordon', target: 'ip-10-0-1-23.ec2.internal', status: 'succeeded', created_at: '2024-05-01T10:01:00Z', finished_at: '2024-05-01T10:01:02Z', outcome: 'succeeded', evictions: [] },
  ];

  function setupDetail(agent: AgentInfo, handlers: Parameters<typeof mockApi>[0] = {}) {
    signIn();
    return mockApi({
      'GET /api/auth/me': () => json(makeMe('owner')),
      'GET /api/clusters/c-1': () => json({ cluster: withAgent(agent.status, { id: 'c-1' }), node_groups: [], nodes: [] }),
      'GET /api/clusters/c-1/agent': () => json(agent),
      'GET /api/clusters/c-1/agent/commands': () => json({ items: commands }),
      'GET /api/jobs': () => json({ items: [] }),
      'GET /api/clusters/c-1/policy': () => apiError(404, 'not_found', 'no policy'),
      ...handlers,
    });
  }

  it('shows versions, watch health, metrics, safe mode and recent commands', async () => {
    setupDetail(
      connectedAgent({
        safe_mode: { entered_at: '2024-05-01T09:00:00Z', exited_at: null, reason: 'control plane unreachable for 300s' },
        metrics_available: false,
        pending_pods: 3,
        watches: [
          { resource: 'nodes', healthy: true, objects: 14, last_event_at: '2024-05-01T10:00:00Z', last_error: null, relists: 0 },
          { resource: 'pods', healthy: false, objects: 230, last_event_at: null, last_error: '410 Gone; re-listing', relists: 2 },
        ],
      }),
    );
    renderApp('/clusters/c-1');

    const card = (await screen.findByRole('heading', { name: 'Agent' })).closest('section') as HTMLElement;
    expect(await within(card).findByText('1.2.0')).toBeInTheDocument();
    expect(within(card).getByText('v1.30.4')).toBeInTheDocument();
    expect(within(card).getByText('Not available')).toBeInTheDocument();
    expect(within(card).getByText(/14 nodes · 230 pods · 6 PDBs/)).toHaveTextContent('3 pending');
    expect(within(card).getByText(/Agent in safe mode since/)).toBeInTheDocument();
    expect(within(card).getByText(/control plane unreachable for 300s/)).toBeInTheDocument();
    expect(within(card).getByText('spa_abcd…')).toBeInTheDocument();
    const watches = within(card).getByRole('table', { name: 'Watches' });
    const pods = within(watches).getByRole('row', { name: /pods/ });
    expect(within(pods).getByText('Failing')).toHaveClass('badge--danger');
    expect(within(pods).getByText('410 Gone; re-listing')).toBeInTheDocument();
    // The header badge warns about safe mode too.
    expect(screen.getAllByText('⚠ Safe mode')).toHaveLength(2);

    const table = await screen.findByRole('table', { name: 'Recent agent commands' });
    const drain = within(table).getByRole('row', { name: /drain/ });
    expect(within(drain).getByText('failed')).toHaveClass('badge--danger');
    expect(within(drain).getByText('deadline passed: PDB web allows no disruption · 0 of 1 pods evicted')).toBeInTheDocument();
    expect(within(drain).getByText('ip-10-0-1-23.ec2.internal')).toBeInTheDocument();
  });

  it('rotates the token after confirming and shows the new one once', async () => {
    const api = setupDetail(connectedAgent(), { 'POST /api/clusters/c-1/agent/rotate': () => json(token('spa_fresh_000', 'c-1'), { status: 201 }) });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    await user.click(await screen.findByRole('button', { name: 'Rotate token' }));
    const dialog = screen.getByRole('dialog', { name: 'Rotate the agent token?' });
    expect(dialog).toHaveTextContent('spa_abcd…');
    expect(api.calls.some((call) => call.method === 'POST')).toBe(false);
    await user.click(within(dialog).getByRole('button', { name: 'Rotate token' }));

    const issued = await screen.findByRole('dialog', { name: 'New agent token' });
    expect(within(issued).getByText('This token is shown once')).toBeInTheDocument();
    await user.click(within(issued).getByRole('tab', { name: 'kubectl' }));
    expect(within(issued).getByRole('tabpanel')).toHaveTextContent('token=spa_fresh_000');
    await user.click(within(issued).getByRole('button', { name: 'Done' }));
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(screen.queryByText(/spa_fresh_000/)).not.toBeInTheDocument();
  });

  it('revokes the token after confirming', async () => {
    let agent = connectedAgent();
    const api = setupDetail(agent, {
      'GET /api/clusters/c-1/agent': () => json(agent),
      'DELETE /api/clusters/c-1/agent': () => {
        agent = agentInfo({ status: 'revoked', token_prefix: null });
        return new Response(null, { status: 204 });
      },
    });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    await user.click(await screen.findByRole('button', { name: 'Revoke' }));
    const dialog = screen.getByRole('dialog', { name: 'Revoke the agent token?' });
    await user.click(within(dialog).getByRole('button', { name: 'Revoke token' }));
    expect(await screen.findByText('Agent token for prod-eks revoked.')).toBeInTheDocument();
    expect(api.calls.filter((call) => call.method === 'DELETE').map((call) => call.url.pathname)).toEqual(['/api/clusters/c-1/agent']);
    const card = screen.getByRole('heading', { name: 'Agent' }).closest('section') as HTMLElement;
    expect(await within(card).findByText(/The agent token was revoked/)).toBeInTheDocument();
    expect(within(card).getByRole('link', { name: 'Install agent' })).toHaveAttribute('href', '/clusters/add?cluster=c-1');
    expect(within(card).queryByRole('button', { name: 'Rotate token' })).not.toBeInTheDocument();
  });
});
