import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { json, makeCluster, makeInstance, makeMe, mockApi, renderApp, signIn } from '../../test/api';
import type { ClusterPolicy } from './policy';
import { layerOfField, partialPolicy } from './policyCards';

const policy: ClusterPolicy = {
  aggressiveness: 'balanced',
  method: 'replace_and_move',
  excluded_namespaces: ['kube-system'],
  stabilization_window_secs: 600,
  template: {
    allowed_families: [],
    architectures: [],
    excluded_sizes: [],
    capacity_type: 'spot',
    strategy: 'capacity_optimized',
    allow_burstable: false,
    on_demand_fallback: true,
  },
  dry_run: false,
  maintenance_mode: false,
  rightsize_percentile: 'p95',
  rightsize_headroom: 0.2,
  drain_timeout_secs: 300,
  disruption_budget: { max_percent: 10, max_nodes: null, max_waves: null },
  on_demand_minimums: [],
  risk_premium: 3,
  excluded_labels: [{ key: 'karpenter.sh/do-not-evict', value: 'true' }],
  spot_affinity: [],
  rightsize_mode: 'recommend',
  rightsize_min_monthly_savings: 10,
};

/** The planner's answer depends on the proposed policy: a spot-never rule costs more, aggressive saves. */
function impactOf(body: Partial<ClusterPolicy>) {
  let planned = 1000;
  if (body.spot_affinity?.some((rule) => rule.mode === 'never')) planned += 250;
  if (body.aggressiveness === 'aggressive') planned -= 120;
  if (body.autoscaling === false) planned += 40;
  if (body.multi_az_spread === true) planned += 15;
  return { current_monthly: 1100, planned_monthly: planned, monthly_difference: planned - 1100, strategy: 'target', nodes_changed: 1, nodes_kept: 3, pods_moved: 2, waves: 1, actions: 1, nodes: [], warnings: [], source: 'agent' };
}

function setup() {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe('owner')),
    'GET /api/clusters/c-1': () => json({ cluster: makeCluster(), node_groups: [], nodes: [makeInstance()] }),
    'GET /api/clusters/c-1/policy': () => json(policy),
    'GET /api/jobs': () => json({ items: [] }),
    'GET /api/templates': () => json({ items: [] }),
    'GET /api/clusters/c-1/hibernation': () =>
      json({ enabled: true, slots: Array<boolean>(168).fill(false).fill(true, 9, 18), timezone: 'Europe/Berlin', prewarm_minutes: 0, holidays: [], overrides: [], node_groups: [], protected_namespaces: [], manual: null, updated_at: null }),
    'POST /api/clusters/c-1/policy/impact': async (request) => json(impactOf((await request.json()) as Partial<ClusterPolicy>)),
    'PATCH /api/clusters/c-1/policy': async (request) => json({ ...policy, ...((await request.json()) as object) }),
  });
}

describe('Optimization policy layers', () => {
  it('shows every card of both tabs, badges each change with the planner’s estimate and saves a partial PATCH', { timeout: 15_000 }, async () => {
    const { calls } = setup();
    const user = userEvent.setup();
    renderApp('/clusters/c-1');
    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    const tabs = within(form).getByRole('tablist', { name: 'Policy layers' });
    expect(within(tabs).getAllByRole('tab').map((t) => t.textContent)).toEqual(['Infrastructure layer', 'Workload layer']);
    for (const title of ['Intelligent autoscaling', 'Bin packing & consolidation', 'Smart hibernation schedule']) {
      expect(within(form).getByRole('region', { name: title })).toBeInTheDocument();
    }
    // The hibernation card links to the cluster's schedule.
    const hibernation = within(form).getByRole('region', { name: 'Smart hibernation schedule' });
    expect(await within(hibernation).findByText(/awake 9 of 168 hours a week \(Europe\/Berlin\)/)).toBeInTheDocument();
    expect(within(hibernation).getByRole('link', { name: 'Edit the hibernation schedule' })).toHaveAttribute('href', '/hibernation?cluster=c-1');
    expect(within(form).getByTestId('policy-unsaved')).toHaveTextContent('No unsaved changes');

    await user.selectOptions(within(form).getByLabelText('Aggressiveness'), 'aggressive');
    const consolidation = within(form).getByRole('region', { name: 'Bin packing & consolidation' });
    expect(await within(consolidation).findByLabelText('Estimated impact of Bin packing & consolidation: −$120.00/mo', {}, { timeout: 3000 })).toBeInTheDocument();

    await user.click(within(tabs).getByRole('tab', { name: /Workload layer/ }));
    for (const title of ['Smart pod rightsizing', 'Spot affinity & deployment rules', 'Governance & exemptions']) {
      expect(within(form).getByRole('region', { name: title })).toBeInTheDocument();
    }
    expect(within(form).getByLabelText('Rightsizing mode')).toHaveValue('recommend');
    expect(within(form).getByLabelText('Excluded pod labels')).toHaveValue('karpenter.sh/do-not-evict=true');
    await user.click(within(form).getByRole('button', { name: 'Add spot rule' }));
    const rule = within(form).getByRole('group', { name: 'Spot rule 1' });
    await user.type(within(rule).getByLabelText('Namespace'), 'payments');
    await user.selectOptions(within(rule).getByLabelText('Spot preference'), 'never');
    const affinity = within(form).getByRole('region', { name: 'Spot affinity & deployment rules' });
    expect(await within(affinity).findByLabelText('Estimated impact of Spot affinity & deployment rules: +$250.00/mo', {}, { timeout: 3000 })).toBeInTheDocument();

    // The sticky bar names the changed cards and the impact of all changes together.
    const bar = within(form).getByRole('region', { name: 'Policy changes' });
    expect(within(bar).getByTestId('policy-unsaved')).toHaveTextContent('Unsaved changes in Bin packing & consolidation, Spot affinity & deployment rules');
    expect(await within(bar).findByLabelText('Estimated impact of All changes: +$130.00/mo', {}, { timeout: 3000 })).toBeInTheDocument();
    // A tab with changes is marked.
    expect(within(tabs).getByRole('tab', { name: /Infrastructure layer/ })).toHaveAccessibleName(/changed/);

    await user.click(within(bar).getByRole('button', { name: 'Save policy' }));
    expect(await screen.findByText('Optimization policy saved.')).toBeInTheDocument();
    expect(calls.find((call) => call.method === 'PATCH')?.body).toEqual({
      aggressiveness: 'aggressive',
      spot_affinity: [{ namespace: 'payments', mode: 'never' }],
    });
    await waitFor(() => expect(within(form).getByTestId('policy-unsaved')).toHaveTextContent('No unsaved changes'));
  });

  it('toggles autoscaling, multi-AZ spread and automatic rightsizing with their impact, and PATCHes only them', { timeout: 15_000 }, async () => {
    const { calls } = setup();
    const user = userEvent.setup();
    renderApp('/clusters/c-1');
    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    const autoscaling = within(form).getByRole('region', { name: 'Intelligent autoscaling' });
    const toggle = within(autoscaling).getByRole('checkbox', { name: /Autoscaling on/ });
    // A policy from an older server (no field) is on.
    expect(toggle).toBeChecked();
    await user.click(toggle);
    expect(await within(autoscaling).findByLabelText('Estimated impact of Intelligent autoscaling: +$40.00/mo', {}, { timeout: 3000 })).toBeInTheDocument();

    await user.click(within(form).getByRole('tab', { name: /Workload layer/ }));
    const affinity = within(form).getByRole('region', { name: 'Spot affinity & deployment rules' });
    const spread = within(affinity).getByRole('checkbox', { name: /Enforce multi-AZ high availability/ });
    expect(spread).not.toBeChecked();
    await user.click(spread);
    expect(await within(affinity).findByLabelText('Estimated impact of Spot affinity & deployment rules: +$15.00/mo', {}, { timeout: 3000 })).toBeInTheDocument();
    const mode = within(form).getByLabelText('Rightsizing mode');
    expect(within(mode).getAllByRole('option').map((o) => o.textContent)).toEqual(['Off', 'Recommendations only', 'Automatic apply']);
    await user.selectOptions(mode, 'auto');
    expect(within(form).getByRole('region', { name: 'Smart pod rightsizing' })).toHaveTextContent(/patches the requests of Deployments and StatefulSets/);

    const bar = within(form).getByRole('region', { name: 'Policy changes' });
    expect(within(bar).getByTestId('policy-unsaved')).toHaveTextContent('Unsaved changes in Intelligent autoscaling, Smart pod rightsizing, Spot affinity & deployment rules');
    await user.click(within(bar).getByRole('button', { name: 'Save policy' }));
    expect(await screen.findByText('Optimization policy saved.')).toBeInTheDocument();
    expect(calls.find((call) => call.method === 'PATCH')?.body).toEqual({ autoscaling: false, multi_az_spread: true, rightsize_mode: 'auto' });
    // The saved policy comes back: the toggles show it.
    await waitFor(() => expect(within(form).getByTestId('policy-unsaved')).toHaveTextContent('No unsaved changes'));
    expect(spread).toBeChecked();
  });

  it('opens the tab of a field that fails validation', async () => {
    const { calls } = setup();
    const user = userEvent.setup();
    renderApp('/clusters/c-1');
    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    await user.click(within(form).getByRole('tab', { name: /Workload layer/ }));
    await user.click(within(form).getByRole('button', { name: 'Add spot rule' }));
    await user.type(within(form).getByLabelText('Namespace'), 'Bad Name');
    await user.click(within(form).getByRole('tab', { name: /Infrastructure layer/ }));
    await user.click(within(form).getByRole('button', { name: 'Save policy' }));
    expect(await within(form).findByText('Enter a namespace name (lowercase letters, digits, -).')).toBeVisible();
    expect(within(form).getByRole('tab', { name: /Workload layer/ })).toHaveAttribute('aria-selected', 'true');
    expect(calls.some((call) => call.method === 'PATCH' || call.method === 'PUT')).toBe(false);
  });
});

describe('layerOfField', () => {
  it('finds the tab of the new cards’ fields', () => {
    expect(layerOfField('autoscaling')).toBe('infrastructure');
    expect(layerOfField('multi_az_spread')).toBe('workload');
    expect(layerOfField('rightsize_mode')).toBe('workload');
  });
});

describe('partialPolicy', () => {
  it('keeps only changed fields and members, and refuses what PATCH cannot express', () => {
    const base = { aggressiveness: 'balanced' as const, template: { capacity_type: 'spot' as const, strategy: 'capacity_optimized' as const }, disruption_budget: { max_percent: 10, max_waves: 2 } };
    expect(partialPolicy(base, { ...base, template: { ...base.template, capacity_type: 'hybrid' } })).toEqual({ template: { capacity_type: 'hybrid' } });
    expect(partialPolicy(base, base)).toEqual({});
    // Clearing an optional limit or unlinking a template: PUT.
    expect(partialPolicy(base, { ...base, disruption_budget: { max_percent: 10 } })).toBeNull();
    expect(partialPolicy({ ...base, template_id: 't-1' }, base)).toBeNull();
  });
});
