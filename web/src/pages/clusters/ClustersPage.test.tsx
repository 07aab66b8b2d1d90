import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { ClusterSummary, DashboardKpis } from '../../api/types';
import { apiError, json, makeCluster, makeMe, mockApi, renderApp, signIn } from '../../test/api';

const clusters: ClusterSummary[] = [
  makeCluster(),
  makeCluster({
    id: 'c-2',
    name: 'legacy-batch',
    account_id: 'acc-2',
    account_name: 'Lab',
    region: 'eu-west-1',
    azs: ['eu-west-1a'],
    kubernetes_version: '1.29',
    end_of_life: true,
    environment: 'staging',
    node_count: 30,
    monthly_run_rate: 9000,
    spot_share: 0.1,
    efficiency_score: 0.3,
    efficiency_grade: 'F',
    health_score: 45,
    // Discovered within the hour: one point and no trend yet.
    trend_24h: { hours: ['2024-05-01T10:00:00Z'], nodes: [30], pods: [120], monthly_cost: [9000] },
  }),
  makeCluster({
    id: 'c-3',
    name: 'analytics',
    node_count: 4,
    monthly_run_rate: 500,
    efficiency_score: undefined,
    efficiency_grade: undefined,
    health_score: 70,
    trend_24h: { hours: ['2024-05-01T09:00:00Z', '2024-05-01T10:00:00Z'], nodes: [4, 4], pods: [20, 22], monthly_cost: [400, 500], monthly_cost_change: 0.25 },
  }),
];

/**
 * The server's fleet numbers. Its efficiency is deliberately not what the clusters above
 * would give in the browser ((0.7·10 + 0.3·30) / 40 = 0.40, a D): the page shows the
 * server's grade and never recomputes one.
 */
const kpis: DashboardKpis = {
  monthly_spend: 11_500,
  monthly_compute: 11_500,
  monthly_storage: 0,
  potential_savings: 0,
  potential_spot_savings: 0,
  potential_packing_savings: 0,
  idle_storage: 0,
  spot_share: 0.3,
  efficiency_score: 0.512,
  efficiency_grade: 'C',
  clusters: 3,
  nodes: 44,
  running_instances: 44,
};

function setup(items: ClusterSummary[] = clusters, fleet: () => Response = () => json(kpis)) {
  signIn();
  const total = items.reduce((sum, cluster) => sum + cluster.monthly_run_rate, 0);
  return mockApi({
    'GET /api/auth/me': () => json(makeMe('owner')),
    'GET /api/clusters': () => json({ items, total_monthly_run_rate: total }),
    'GET /api/dashboard/kpis': fleet,
  });
}

/** Cluster names in table order. */
function names(): string[] {
  const table = screen.getByRole('table', { name: 'Clusters' });
  return within(table)
    .getAllByRole('row')
    .slice(1)
    .map((row) => row.querySelector('.cell-title')?.textContent ?? '');
}

describe('Clusters registry', () => {
  it('sums every cluster in the status bar and marks end-of-life versions', async () => {
    const { calls } = setup();
    renderApp('/clusters');

    const table = await screen.findByRole('table', { name: 'Clusters' });
    const status = screen.getByRole('region', { name: 'All clusters' });
    expect(within(status).getByText('3')).toBeInTheDocument();
    expect(within(status).getByText('120')).toBeInTheDocument(); // 40 vCPU × 3
    expect(within(status).getByText('$11,500')).toBeInTheDocument();
    // The server's organization-wide grade and score, as on the dashboard.
    expect(await within(status).findByText('C')).toBeInTheDocument();
    expect(within(status).getByText('51%')).toBeInTheDocument();
    expect(within(status).queryByText('D')).not.toBeInTheDocument();
    const fleet = calls.filter((call) => call.url.pathname === '/api/dashboard/kpis');
    expect(fleet.length).toBeGreaterThan(0);
    expect(fleet.every((call) => !call.url.searchParams.has('account_id'))).toBe(true);

    const legacy = within(table).getByRole('row', { name: /legacy-batch/ });
    expect(within(legacy).getByText('EOL')).toBeInTheDocument();
    expect(within(legacy).getByRole('meter', { name: 'Health 45 of 100' })).toHaveClass('gauge--danger');
    const prod = within(table).getByRole('row', { name: /prod-eks/ });
    expect(within(prod).queryByText('EOL')).not.toBeInTheDocument();
    expect(within(prod).getByRole('meter', { name: 'Health 90 of 100' })).toHaveClass('gauge--success');
    expect(within(prod).getByText('60% spot')).toBeInTheDocument();
  });

  it('shows no grade when the server has none or cannot be reached', async () => {
    setup(clusters, () => json({ ...kpis, efficiency_score: undefined, efficiency_grade: undefined }));
    renderApp('/clusters');
    const status = await screen.findByRole('region', { name: 'All clusters' });
    expect(await within(status).findByText('Not graded')).toBeInTheDocument();
    expect(within(status).getByText('Weighted by node count')).toBeInTheDocument();
  });

  it('says the efficiency is unavailable when the fleet numbers fail to load', async () => {
    setup(clusters, () => apiError(403, 'forbidden', 'No access.'));
    renderApp('/clusters');
    const status = await screen.findByRole('region', { name: 'All clusters' });
    expect(await within(status).findByText('Efficiency unavailable')).toBeInTheDocument();
    expect(within(status).getByText('Not graded')).toBeInTheDocument();
    // The registry itself still loads.
    expect(screen.getByRole('table', { name: 'Clusters' })).toBeInTheDocument();
  });

  it('draws 24-hour sparklines for nodes and pods and the cost trend', async () => {
    setup();
    renderApp('/clusters');
    const table = await screen.findByRole('table', { name: 'Clusters' });

    // makeCluster's trend: nodes 9 → 10 → 10, pods 110 → 118 → 120, cost $2,100 → $2,000 (-4.76 %).
    const prod = within(table).getByRole('row', { name: /prod-eks/ });
    const nodes = within(prod).getByRole('img', { name: 'Nodes, last 24 hours: latest 10, min 9, max 10' });
    expect(nodes.querySelector('path')?.getAttribute('d')?.match(/[ML]/g)).toHaveLength(3);
    expect(within(prod).getByRole('img', { name: 'Pods, last 24 hours: latest 120, min 110, max 120' })).toBeInTheDocument();
    // Nodes above pods, each followed by its sparkline.
    const counts = prod.querySelector('.counts');
    expect([...(counts?.children ?? [])].map((child) => child.getAttribute('aria-label')?.split(',')[0] ?? child.textContent)).toEqual(['10', 'Nodes', '120', 'Pods']);
    const cheaper = within(prod).getByText('24-hour cost trend: down 4.8%, cheaper').closest('.trend');
    expect(cheaper).toHaveClass('trend--down');
    expect(cheaper).toHaveTextContent(/▼\s4\.8%/);
    expect(cheaper).toHaveAttribute('title', 'Monthly run rate over the last 24 hours: $2,100 → $2,000');

    const analytics = within(table).getByRole('row', { name: /analytics/ });
    const dearer = within(analytics).getByText('24-hour cost trend: up 25%, more expensive').closest('.trend');
    expect(dearer).toHaveClass('trend--up');
    expect(dearer).toHaveTextContent(/▲\s25%/);
    expect(within(analytics).getByRole('img', { name: 'Nodes, last 24 hours: latest 4, min 4, max 4' })).toBeInTheDocument();

    // One reading: a dot, no trend yet.
    const legacy = within(table).getByRole('row', { name: /legacy-batch/ });
    expect(within(legacy).getByRole('img', { name: 'Nodes, last 24 hours: latest 30, a single reading' })).toBeInTheDocument();
    const none = within(legacy).getByText('24-hour cost trend: not enough history').closest('.trend');
    expect(none).toHaveClass('trend--none');
    expect(none).toHaveTextContent('—');
    // The trend sits beside the run rate, not inside it.
    expect(legacy.querySelector('td:nth-child(5) .cell-title')).toHaveTextContent(/^\$9,000$/);
  });

  it('sorts by a column header and announces the order with aria-sort', async () => {
    setup();
    const user = userEvent.setup();
    renderApp('/clusters');
    await screen.findByRole('table', { name: 'Clusters' });

    expect(names()).toEqual(['analytics', 'legacy-batch', 'prod-eks']);
    expect(screen.getByRole('columnheader', { name: /Cluster/ })).toHaveAttribute('aria-sort', 'ascending');

    const cost = screen.getByRole('columnheader', { name: /Monthly run rate/ });
    await user.click(within(cost).getByRole('button'));
    expect(names()).toEqual(['analytics', 'prod-eks', 'legacy-batch']);
    expect(cost).toHaveAttribute('aria-sort', 'ascending');
    expect(screen.getByRole('columnheader', { name: /Cluster/ })).toHaveAttribute('aria-sort', 'none');

    await user.click(within(cost).getByRole('button'));
    expect(names()).toEqual(['legacy-batch', 'prod-eks', 'analytics']);
    expect(cost).toHaveAttribute('aria-sort', 'descending');

    // Ungraded clusters sort below F.
    await user.click(within(screen.getByRole('columnheader', { name: /Efficiency/ })).getByRole('button'));
    expect(names()).toEqual(['analytics', 'legacy-batch', 'prod-eks']);
  });

  it('filters by search, environment, account, high cost and EOL', async () => {
    setup();
    const user = userEvent.setup();
    renderApp('/clusters');
    await screen.findByRole('table', { name: 'Clusters' });

    await user.type(screen.getByLabelText('Search'), 'EU-WEST');
    expect(names()).toEqual(['legacy-batch']);
    await user.clear(screen.getByLabelText('Search'));

    await user.selectOptions(screen.getByLabelText('Environment'), 'production');
    expect(names()).toEqual(['analytics', 'prod-eks']);
    await user.selectOptions(screen.getByLabelText('Account'), 'Lab');
    expect(screen.getByText('No clusters match')).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Clear filters' }));
    expect(names()).toHaveLength(3);

    // Median run rate is $2,000: only strictly higher counts as high cost.
    await user.click(screen.getByRole('button', { name: 'High cost' }));
    expect(screen.getByRole('button', { name: 'High cost' })).toHaveAttribute('aria-pressed', 'true');
    expect(names()).toEqual(['legacy-batch']);
    await user.click(screen.getByRole('button', { name: 'High cost' }));

    await user.click(screen.getByRole('button', { name: 'EOL only' }));
    expect(names()).toEqual(['legacy-batch']);
  });

  it('opens the cluster on row click', async () => {
    setup();
    const user = userEvent.setup();
    renderApp('/clusters');
    const table = await screen.findByRole('table', { name: 'Clusters' });
    mockApi({
      'GET /api/auth/me': () => json(makeMe('owner')),
      'GET /api/clusters/c-2': () => apiError(404, 'not_found', 'cluster not found'),
    });
    await user.click(within(table).getByRole('row', { name: /legacy-batch/ }));
    expect(await screen.findByText('Cluster not found')).toBeInTheDocument();
  });

  it('offers to connect an account when there are no clusters', async () => {
    setup([]);
    renderApp('/clusters');
    expect(await screen.findByText('No clusters yet')).toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'Connect AWS account' })).toHaveAttribute('href', '/onboarding?add=1');
  });

  it('reports a failed load with a retry', async () => {
    signIn();
    mockApi({
      'GET /api/auth/me': () => json(makeMe('viewer')),
      'GET /api/clusters': () => apiError(403, 'forbidden', 'No access.'),
    });
    renderApp('/clusters');
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not load clusters');
    expect(within(alert).getByRole('button', { name: 'Try again' })).toBeInTheDocument();
  });
});
