import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { ClusterSummary } from '../../api/types';
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
  }),
  makeCluster({
    id: 'c-3',
    name: 'analytics',
    node_count: 4,
    monthly_run_rate: 500,
    efficiency_score: undefined,
    efficiency_grade: undefined,
    health_score: 70,
  }),
];

function setup(items: ClusterSummary[] = clusters) {
  signIn();
  const total = items.reduce((sum, cluster) => sum + cluster.monthly_run_rate, 0);
  return mockApi({
    'GET /api/auth/me': () => json(makeMe('owner')),
    'GET /api/clusters': () => json({ items, total_monthly_run_rate: total }),
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
    setup();
    renderApp('/clusters');

    const table = await screen.findByRole('table', { name: 'Clusters' });
    const status = screen.getByRole('region', { name: 'All clusters' });
    expect(within(status).getByText('3')).toBeInTheDocument();
    expect(within(status).getByText('120')).toBeInTheDocument(); // 40 vCPU × 3
    expect(within(status).getByText('$11,500')).toBeInTheDocument();
    // (0.7·10 + 0.3·30) / 40 = 0.40 → D; the ungraded cluster does not count.
    expect(within(status).getByText('D')).toBeInTheDocument();
    expect(within(status).getByText('40%')).toBeInTheDocument();

    const legacy = within(table).getByRole('row', { name: /legacy-batch/ });
    expect(within(legacy).getByText('EOL')).toBeInTheDocument();
    expect(within(legacy).getByRole('meter', { name: 'Health 45 of 100' })).toHaveClass('gauge--danger');
    const prod = within(table).getByRole('row', { name: /prod-eks/ });
    expect(within(prod).queryByText('EOL')).not.toBeInTheDocument();
    expect(within(prod).getByRole('meter', { name: 'Health 90 of 100' })).toHaveClass('gauge--success');
    expect(within(prod).getByText('60% spot')).toBeInTheDocument();
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
