import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { DashboardKpis, FleetComposition, Heatmap, ResourceGap, SavingsSeries, Stability } from '../../api/types';
import { apiError, json, makeAccount, makeMe, makeScan, mockApi, renderApp, signIn } from '../../test/api';

const kpis: DashboardKpis = {
  monthly_spend: 12_345.6,
  monthly_compute: 11_000,
  monthly_storage: 1_345.6,
  potential_savings: 4_321,
  potential_spot_savings: 2_500,
  potential_packing_savings: 1_500,
  idle_storage: 321,
  spot_share: 0.62,
  efficiency_score: 0.58,
  efficiency_grade: 'C',
  clusters: 3,
  nodes: 29,
  running_instances: 34,
};

const hour = (index: number) => new Date(Date.UTC(2024, 4, 1, index)).toISOString();

const savings: SavingsSeries = {
  points: [
    { at: hour(0), on_demand_baseline_hourly: 20, actual_hourly: 12, savings_percent: 40 },
    { at: hour(1), on_demand_baseline_hourly: 20, actual_hourly: 11, savings_percent: 45 },
  ],
};

const gap: ResourceGap = {
  bin_packing_waste_monthly: 1_500,
  points: [
    {
      at: hour(0),
      cpu_capacity_millicores: 100_000,
      cpu_requested_millicores: 50_000,
      cpu_used_millicores: 20_000,
      memory_capacity_mib: 400 * 1024,
      memory_requested_mib: 300 * 1024,
      memory_used_mib: 200 * 1024,
    },
  ],
};

const fleet: FleetComposition = {
  slices: [
    { lifecycle: 'on-demand', family: 'm5', instances: 8, monthly_cost: 1_100 },
    { lifecycle: 'spot', family: 'c6i', instances: 12, monthly_cost: 700 },
    { lifecycle: 'spot', family: 'm5', instances: 6, monthly_cost: 350 },
  ],
};

const heatmap: Heatmap = {
  hibernation_savings_monthly: 876.5,
  idle_hours_per_week: 2,
  cells: [
    { weekday: 0, hour: 2, utilization: 0.05, hourly_cost: 3, idle: true },
    { weekday: 0, hour: 3, utilization: 0.04, hourly_cost: 3, idle: true },
    { weekday: 0, hour: 10, utilization: 0.6, hourly_cost: 3, idle: false },
  ],
};

const stability = (index: number): Stability => ({
  index,
  components: [
    { name: 'spot_stability', score: 50, detail: '3 of 6 spot nodes in flagged pools' },
    { name: 'resource_pressure', score: 100, detail: '0 of 3 clusters above 90% memory requests' },
    { name: 'control_plane', score: 100, detail: '1 of 1 accounts synced recently' },
  ],
});

const DASHBOARD = ['kpis', 'savings', 'resource-gap', 'fleet', 'heatmap', 'stability'].map((name) => `/api/dashboard/${name}`);

function setup(overrides: Record<string, () => Response> = {}) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe('viewer')),
    'GET /api/accounts': () => json({ items: [makeAccount(), makeAccount({ id: 'acc-2', name: 'Staging', aws_account_id_masked: '5678-****-****' })] }),
    'GET /api/accounts/acc-1/scan': () => json(makeScan()),
    'GET /api/accounts/acc-2/scan': () => json(makeScan({ account_id: 'acc-2', counts: { instances: 5, clusters: 1, volumes: 2, snapshots: 0 } })),
    'GET /api/dashboard/kpis': () => json(kpis),
    'GET /api/dashboard/savings': () => json(savings),
    'GET /api/dashboard/resource-gap': () => json(gap),
    'GET /api/dashboard/fleet': () => json(fleet),
    'GET /api/dashboard/heatmap': () => json(heatmap),
    'GET /api/dashboard/stability': () => json(stability(83.3)),
    ...overrides,
  });
}

const card = (title: string) => screen.getByRole('heading', { name: title, level: 2 }).closest('section') as HTMLElement;

/** The value of a KPI tile, found by its label. */
const kpi = (label: string) => (screen.getByText(label, { selector: 'dt' }).parentElement as HTMLElement).querySelector('.stat__value')?.textContent;

describe('Dashboard', () => {
  it('shows the KPIs, charts, heatmap and stability from the API', async () => {
    setup();
    renderApp('/dashboard');

    const headline = await screen.findByRole('region', { name: 'Headline numbers' });
    expect(kpi('Monthly spend')).toBe('$12,346');
    expect(kpi('Potential savings')).toBe('$4,321');
    expect(kpi('Spot share')).toBe('62%');
    expect(within(headline).getByText('C')).toHaveClass('badge--warning');
    expect(within(headline).getByText('score 58%')).toBeInTheDocument();
    expect(within(headline).getByText(/35% of spend · Spot \$2,500 · packing \$1,500 · idle storage \$321/)).toBeInTheDocument();

    const savingsCard = card('Savings over time');
    expect(await within(savingsCard).findByText('45.0%')).toBeInTheDocument();
    expect(within(savingsCard).getByRole('img', { name: /Savings over time chart\. .*on average 42\.5% less than at On-Demand prices/ })).toBeInTheDocument();
    expect(within(savingsCard).getByRole('figure')).toHaveTextContent('Latest: $11.00/h actual vs $20.00/h On-Demand (45.0% saved).');

    const gapCard = card('Resource gap');
    expect(await within(gapCard).findByText('$1,500')).toBeInTheDocument();
    expect(within(gapCard).getByRole('figure')).toHaveTextContent('CPU now: 100 vCPU capacity, 50 vCPU requested (50%), 20 vCPU used.');
    await userEvent.setup().click(within(gapCard).getByRole('button', { name: 'Memory' }));
    expect(within(gapCard).getByRole('figure')).toHaveTextContent('Memory now: 400 GiB capacity, 300 GiB requested (75%), 200 GiB used.');

    const fleetCard = card('Fleet composition');
    expect(await within(fleetCard).findByRole('img', { name: /26 running instances in 3 families: 18 Spot \(69%, \$1,050\/mo\), 8 On-Demand \(31%, \$1,100\/mo\)/ })).toBeInTheDocument();
    const legend = within(fleetCard).getByRole('list', { name: 'Instances by lifecycle and family' });
    expect(within(legend).getAllByRole('listitem')[0]).toHaveTextContent(/^Spot18 · \$1,050\/moc6i ×12m5 ×6$/);
    expect(within(fleetCard).getByText('$2,500/mo')).toBeInTheDocument();

    const heatCard = card('Activity heatmap');
    expect(await within(heatCard).findByRole('table', { name: /Activity by hour of the week\. 2 of 3 hours/ })).toBeInTheDocument();
    const hibernation = within(heatCard).getByRole('complementary', { name: 'Hibernation opportunity' });
    expect(hibernation).toHaveTextContent('$877/mo');
    expect(hibernation).toHaveTextContent('2 idle hours per week');

    const stabilityCard = card('Stability');
    expect(await within(stabilityCard).findByRole('meter', { name: 'Stability index' })).toHaveAttribute('aria-valuenow', '83');
    expect(within(stabilityCard).getByText('Savings are not degrading stability.')).toBeInTheDocument();
    expect(within(stabilityCard).getByRole('meter', { name: 'Spot stability' })).toHaveClass('meter--warning');
    expect(within(stabilityCard).getByText('3 of 6 spot nodes in flagged pools')).toBeInTheDocument();

    // Inventory counts of both accounts.
    const inventory = card('Discovered inventory');
    expect(within(inventory).getByText('Across 2 connected accounts')).toBeInTheDocument();
    await waitFor(() => expect(kpi('EC2 instances')).toBe('34'));
    expect(kpi('EKS clusters')).toBe('4');
  });

  it('warns when stability drops below 80', async () => {
    setup({ 'GET /api/dashboard/stability': () => json(stability(66.7)) });
    renderApp('/dashboard');

    const gauge = await screen.findByRole('meter', { name: 'Stability index' });
    expect(gauge).toHaveClass('stability-gauge--warning');
    expect(screen.getByText(/Below 80: savings may be costing stability/)).toBeInTheDocument();
  });

  it('scopes every query to the account in the URL, and to the one picked in the switcher', async () => {
    const { calls } = setup();
    const user = userEvent.setup();
    renderApp('/dashboard?account=acc-2&days=14');

    const switcher = await screen.findByRole('combobox', { name: 'Account' });
    expect(switcher).toHaveValue('acc-2');
    expect(screen.getByRole('button', { name: '14 days' })).toHaveAttribute('aria-pressed', 'true');
    await screen.findByRole('region', { name: 'Headline numbers' });
    await waitFor(() => expect(new Set(calls.map((call) => call.url.pathname))).toEqual(new Set([...DASHBOARD, '/api/auth/me', '/api/accounts', '/api/accounts/acc-2/scan'])));
    for (const call of calls.filter((call) => call.url.pathname.startsWith('/api/dashboard/'))) {
      expect(call.url.searchParams.get('account_id')).toBe('acc-2');
    }
    expect(calls.find((call) => call.url.pathname === '/api/dashboard/savings')?.url.searchParams.get('days')).toBe('14');
    expect(card('Discovered inventory')).toHaveTextContent('Across 1 connected account');

    calls.length = 0;
    await user.selectOptions(switcher, 'All accounts');
    await waitFor(() => expect(calls.filter((call) => call.url.pathname.startsWith('/api/dashboard/')).map((call) => call.url.pathname).sort()).toEqual([...DASHBOARD].sort()));
    for (const call of calls.filter((call) => call.url.pathname.startsWith('/api/dashboard/'))) {
      expect(call.url.searchParams.has('account_id')).toBe(false);
    }

    calls.length = 0;
    await user.click(screen.getByRole('button', { name: '24 h' }));
    await waitFor(() => expect(calls.find((call) => call.url.pathname === '/api/dashboard/resource-gap')?.url.searchParams.get('days')).toBe('1'));
  });

  it('treats an unknown account in the URL as all accounts', async () => {
    const { calls } = setup();
    renderApp('/dashboard?account=gone');

    expect(await screen.findByRole('combobox', { name: 'Account' })).toHaveValue('');
    await screen.findByRole('region', { name: 'Headline numbers' });
    expect(calls.some((call) => call.url.searchParams.has('account_id'))).toBe(false);
  });

  it('reports a failed card in place and keeps the others', async () => {
    setup({ 'GET /api/dashboard/fleet': () => apiError(500, 'internal', 'Fleet query timed out.') });
    renderApp('/dashboard');

    await screen.findByRole('heading', { name: 'Fleet composition' });
    const fleetCard = card('Fleet composition');
    expect(await within(fleetCard).findByRole('alert', {}, { timeout: 3000 })).toHaveTextContent('Could not load the fleet composition');
    expect(within(fleetCard).getByRole('alert')).toHaveTextContent('Fleet query timed out.');
    expect(within(fleetCard).getByRole('button', { name: 'Try again' })).toBeInTheDocument();
    expect(kpi('Monthly spend')).toBe('$12,346');
    expect(screen.getAllByRole('alert')).toHaveLength(1);
  });

  it('shows skeletons while loading and says when there is no history yet', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    setup({
      'GET /api/dashboard/savings': () => json({ points: [] }),
      'GET /api/dashboard/heatmap': () => json({ cells: [], hibernation_savings_monthly: 0, idle_hours_per_week: 0 }),
      'GET /api/dashboard/fleet': () => json({ slices: [] }),
      'GET /api/dashboard/kpis': (() => gate.then(() => json(kpis))) as unknown as () => Response,
    });
    renderApp('/dashboard');

    expect(await screen.findByRole('status', { name: 'Loading the headline numbers' })).toBeInTheDocument();
    expect(await within(card('Savings over time')).findByText(/No cost history in this window yet/)).toBeInTheDocument();
    expect(await within(card('Activity heatmap')).findByText(/No utilization history yet/)).toBeInTheDocument();
    expect(await within(card('Fleet composition')).findByText('No running instances in this scope.')).toBeInTheDocument();
    act(() => release());
    expect(await screen.findByRole('region', { name: 'Headline numbers' })).toBeInTheDocument();
  });

  it('re-reads the dashboard when discovery reports an inventory change', async () => {
    const sources: { onopen: (() => void) | null; onmessage: ((message: MessageEvent<string>) => void) | null }[] = [];
    vi.stubGlobal(
      'EventSource',
      class {
        onopen: (() => void) | null = null;
        onmessage: ((message: MessageEvent<string>) => void) | null = null;
        onerror: (() => void) | null = null;
        constructor() {
          sources.push(this);
        }
        close() {}
      },
    );
    const { calls } = setup();
    renderApp('/dashboard');
    await screen.findByRole('region', { name: 'Headline numbers' });
    await waitFor(() => expect(sources).toHaveLength(1));
    const source = sources[0]!;
    act(() => source.onopen?.());
    await waitFor(() => expect(calls.filter((call) => call.url.pathname === '/api/dashboard/stability')).toHaveLength(1));

    calls.length = 0;
    const event = { type: 'inventory.changed', ts: '2024-05-01T10:00:00Z', data: { account_id: 'acc-1' } };
    act(() => source.onmessage?.(new MessageEvent('message', { data: JSON.stringify(event) })));
    await waitFor(() =>
      expect(calls.filter((call) => call.url.pathname.startsWith('/api/dashboard/')).map((call) => call.url.pathname).sort()).toEqual([...DASHBOARD].sort()),
    );
  });

  it('shows the connect prompt and reads nothing else without an account', async () => {
    const { calls } = setup({ 'GET /api/accounts': () => json({ items: [] }) });
    renderApp('/dashboard');

    expect(await screen.findByText('No cloud account connected yet')).toBeInTheDocument();
    expect(calls.some((call) => call.url.pathname.startsWith('/api/dashboard/'))).toBe(false);
  });
});
