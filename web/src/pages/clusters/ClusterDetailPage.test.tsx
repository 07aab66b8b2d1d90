import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { InstanceDetail } from '../../api/types';
import { apiError, json, makeCluster, makeInstance, makeMe, mockApi, renderApp, signIn } from '../../test/api';

const spot = makeInstance();
const onDemand = makeInstance({
  id: 'inst-2',
  instance_id: 'i-0def456',
  lifecycle: 'on-demand',
  instance_type: 'm5.xlarge',
  pool: 'm5.xlarge@us-east-1b',
  az: 'us-east-1b',
  pool_flagged: true,
});

const instanceDetail: InstanceDetail = {
  instance: { ...spot, interruption_probability: 0.004, risk_band: 'SAFE', risk_model: 'shipped:risk-v1' },
  account_id: 'acc-1',
  tags: { team: 'payments' },
  history: [
    { at: '2024-05-02T09:00:00Z', kind: 'changed', detail: { state: ['pending', 'running'], lifecycle: ['spot', 'spot'] } },
    { at: '2024-05-01T09:00:00Z', kind: 'discovered', detail: { instance_type: 'm5.large', lifecycle: 'spot', az: 'us-east-1a' } },
  ],
  alternatives: [
    { instance_type: 'm6a.large', az: 'us-east-1c', vcpu: 2, memory_mib: 8192, spot_price: 0.03, monthly_cost: 21.9, interruption_band: 'SAFE', interruption_probability: 0.12 },
    { instance_type: 'm5a.large', az: 'us-east-1b', vcpu: 2, memory_mib: 8192, spot_price: 0.035, monthly_cost: 25.55, interruption_band: 'CAUTION' },
    { instance_type: 'm6i.large', az: 'us-east-1a', vcpu: 2, memory_mib: 8192, spot_price: 0.038, monthly_cost: 27.74, interruption_band: 'AVOID' },
    { instance_type: 'm5.xlarge', az: 'us-east-1c', vcpu: 4, memory_mib: 16384, spot_price: 0.07, monthly_cost: 51.1, interruption_band: 'SAFE' },
    { instance_type: 'm6a.xlarge', az: 'us-east-1a', vcpu: 4, memory_mib: 16384, spot_price: 0.072, monthly_cost: 52.56, interruption_band: 'SAFE' },
  ],
  alternatives_as_of: '2024-05-02T10:00:00Z',
};

function setup(instance: () => Response = () => json(instanceDetail)) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe('viewer')),
    'GET /api/clusters/c-1': () =>
      json({
        cluster: makeCluster({ end_of_life: true, kubernetes_version: '1.29' }),
        node_groups: [{ name: 'workers', instance_types: ['m5.large', 'm5a.large'], capacity_type: 'SPOT', desired: 3, min: 1, max: 6 }],
        nodes: [spot, onDemand],
      }),
    'GET /api/instances/inst-1': instance,
    'GET /api/jobs': () => json({ items: [] }),
    'GET /api/clusters/c-1/policy': () =>
      json({
        aggressiveness: 'balanced',
        method: 'replace_and_move',
        excluded_namespaces: [],
        stabilization_window_secs: 600,
        template: { allowed_families: [], architectures: [], excluded_sizes: [], capacity_type: 'spot', strategy: 'lowest_price', allow_burstable: false, on_demand_fallback: true },
        dry_run: false,
        maintenance_mode: false,
      }),
  });
}

describe('Cluster detail', () => {
  it('shows savings, efficiency ratios, node groups and colored node badges', async () => {
    setup();
    renderApp('/clusters/c-1');

    expect(await screen.findByRole('heading', { name: 'prod-eks' })).toBeInTheDocument();
    expect(screen.getByText('EOL')).toBeInTheDocument();
    expect(screen.getByText('$1,000')).toBeInTheDocument(); // $3,000 on-demand − $2,000 run rate
    // The 24-hour trend of the run rate and the node count (makeCluster's trend_24h).
    expect(screen.getByText('24-hour cost trend: down 4.8%, cheaper').closest('.trend')).toHaveClass('trend--down');
    expect(screen.getByRole('img', { name: 'Nodes, last 24 hours: latest 10, min 9, max 10' })).toBeInTheDocument();
    expect(screen.getByText(/120 pods/)).toBeInTheDocument();
    expect(screen.getByRole('meter', { name: 'CPU requested / allocatable' })).toHaveAttribute('aria-valuenow', '75');
    expect(screen.getByRole('meter', { name: 'Memory used / requested' })).toHaveAttribute('aria-valuenow', '75');

    const groups = screen.getByRole('table', { name: 'Node groups' });
    expect(within(groups).getByText('m5.large, m5a.large')).toBeInTheDocument();

    const nodes = screen.getByRole('table', { name: 'Nodes' });
    expect(within(nodes).getByText('Spot')).toHaveClass('badge--success');
    expect(within(nodes).getByText('On-Demand')).toHaveClass('badge--info');
    const flagged = within(nodes).getByRole('row', { name: /i-0def456/ });
    expect(within(flagged).getByText(/Flagged pool/)).toBeInTheDocument();
  });

  it('opens a node in a dialog with its alternatives and history', async () => {
    setup();
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    await user.click(await screen.findByRole('row', { name: /i-0abc123/ }));
    const dialog = screen.getByRole('dialog', { name: 'i-0abc123' });
    expect(dialog).toHaveAccessibleDescription('m5.large · Spot · us-east-1a');

    const alternatives = await within(dialog).findByRole('table', { name: 'Alternative spot pools' });
    const rows = within(alternatives).getAllByRole('row').slice(1);
    expect(rows).toHaveLength(5);
    expect(within(rows[0] as HTMLElement).getByText('m6a.large')).toBeInTheDocument();
    expect(within(rows[0] as HTMLElement).getByText('SAFE')).toHaveClass('badge--success');
    expect(within(rows[0] as HTMLElement).getByText('SAFE')).toHaveTextContent('SAFE 12%');
    expect(within(rows[1] as HTMLElement).getByText('CAUTION')).toHaveTextContent(/^Interruption risk CAUTION$/);
    expect(within(rows[0] as HTMLElement).getByText('−$7.30 vs now')).toBeInTheDocument();
    expect(within(rows[1] as HTMLElement).getByText('CAUTION')).toHaveClass('badge--warning');
    expect(within(rows[2] as HTMLElement).getByText('AVOID')).toHaveClass('badge--danger');

    const details = within(dialog).getByText('Interruption risk', { selector: 'dt' }).nextElementSibling as HTMLElement;
    expect(details).toHaveTextContent('Interruption risk SAFE 0.4%');
    expect(details).toHaveTextContent('model shipped:risk-v1');

    const history = within(dialog).getByRole('list', { name: 'Instance history' });
    const entries = within(history).getAllByRole('listitem');
    expect(entries[0]).toHaveTextContent('Changed');
    expect(entries[0]).toHaveTextContent('state pending → running');
    expect(entries[0]).not.toHaveTextContent('lifecycle');
    expect(entries[1]).toHaveTextContent('First seen as m5.large Spot in us-east-1a');
    expect(within(dialog).getByText('team=payments')).toBeInTheDocument();

    await user.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
  });

  it('says when the account’s prices have not been read yet instead of showing no alternatives', async () => {
    setup(() => json({ ...instanceDetail, alternatives: [], alternatives_as_of: null }));
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    await user.click(await screen.findByRole('row', { name: /i-0abc123/ }));
    const dialog = screen.getByRole('dialog', { name: 'i-0abc123' });
    expect(await within(dialog).findByText(/have not been read yet/)).toBeInTheDocument();
    expect(within(dialog).queryByRole('table', { name: 'Alternative spot pools' })).not.toBeInTheDocument();
  });

  it('reports a failed instance load inside the dialog', async () => {
    setup(() => apiError(500, 'internal', 'Database unavailable.'));
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    await user.click(await screen.findByRole('row', { name: /i-0abc123/ }));
    const dialog = screen.getByRole('dialog', { name: 'i-0abc123' });
    expect(await within(dialog).findByRole('alert', {}, { timeout: 3000 })).toHaveTextContent('Database unavailable.');
  });
});
