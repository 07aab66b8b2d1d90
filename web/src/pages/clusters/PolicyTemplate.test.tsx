import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Role } from '../../api/types';
import { json, makeCluster, makeInstance, makeMe, mockApi, renderApp, signIn } from '../../test/api';
import { makeTemplate } from '../templates/fixtures';
import type { ClusterPolicy } from './policy';

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
  risk_premium: 0.5,
};

const general = makeTemplate();
const graviton = makeTemplate({
  id: 't-2',
  name: 'graviton-hybrid',
  is_default: false,
  spec: { ...general.spec, families: ['m7g', 'c7g'], architectures: ['arm64'], capacity_type: 'hybrid', strategy: 'lowest_price', on_demand_fallback: false },
});

type Handlers = Parameters<typeof mockApi>[0];

function setup(role: Role, current: ClusterPolicy, handlers: Handlers = {}) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe(role)),
    'GET /api/clusters/c-1': () => json({ cluster: makeCluster(), node_groups: [], nodes: [makeInstance()] }),
    'GET /api/clusters/c-1/policy': () => json(current),
    'GET /api/jobs': () => json({ items: [] }),
    'GET /api/templates': () => json({ items: [general, graviton] }),
    ...handlers,
  });
}

describe('Policy card node template', () => {
  it('links an organization template: its fields become read-only and PATCH carries template_id', { timeout: 15_000 }, async () => {
    const { calls } = setup('owner', policy, {
      'PATCH /api/clusters/c-1/policy': async (request) => {
        const body = (await request.json()) as { template_id?: string };
        return json({ ...policy, template: { ...policy.template, allowed_families: ['m7g', 'c7g'] }, template_id: body.template_id, template_name: 'graviton-hybrid' });
      },
      'POST /api/clusters/c-1/policy/impact': () =>
        json({ current_monthly: 2000, planned_monthly: 1500, monthly_difference: -500, strategy: 'target', nodes_changed: 1, nodes_kept: 0, pods_moved: 3, waves: 1, actions: 1, nodes: [], warnings: [], source: 'agent' }),
    });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    const selector = within(form).getByLabelText('Node template');
    expect(selector).toHaveValue('');
    await waitFor(() => expect(within(selector).getAllByRole('option').map((option) => option.textContent)).toEqual(["This cluster's own template", 'general-spot (default)', 'graviton-hybrid']));
    expect(within(form).getByLabelText('Allowed instance families')).toBeEnabled();

    await user.selectOptions(selector, 't-2');
    expect(within(form).getByRole('link', { name: 'graviton-hybrid' })).toHaveAttribute('href', '/templates/t-2');
    expect(within(form).getByLabelText('Allowed instance families')).toBeDisabled();
    expect(within(form).getByLabelText('Allowed instance families')).toHaveValue('m7g, c7g');
    expect(within(form).getByLabelText('Capacity type')).toHaveValue('hybrid');
    expect(within(form).getByRole('checkbox', { name: 'arm64 (Graviton)' })).toBeChecked();
    // Not part of the template: still editable.
    expect(within(form).getByLabelText('Risk premium')).toBeEnabled();

    await user.click(within(form).getByRole('button', { name: 'Preview impact' }));
    await screen.findByRole('status', { name: 'Estimated impact' });
    expect(calls.some((call) => call.url.pathname.endsWith('/policy/impact') && (call.body as { template_id?: string }).template_id === 't-2')).toBe(true);

    await user.click(within(form).getByRole('button', { name: 'Save policy' }));
    expect(await screen.findByText('Optimization policy saved.')).toBeInTheDocument();
    // Only what changed: the link and the template fields it brought.
    const patch = calls.find((call) => call.method === 'PATCH');
    expect(patch?.body).toMatchObject({ template_id: 't-2', template: { allowed_families: ['m7g', 'c7g'], capacity_type: 'hybrid' } });
    expect(patch?.body).not.toHaveProperty('template_name');
    expect(patch?.body).not.toHaveProperty('aggressiveness');
  });

  it('sends no template_id when the cluster keeps its own template, which unlinks one (PUT: PATCH cannot unlink)', async () => {
    const { calls } = setup('owner', { ...policy, template_id: 't-1', template_name: 'general-spot' }, {
      'PUT /api/clusters/c-1/policy': async (request) => json({ ...policy, ...((await request.json()) as object) }),
    });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');

    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    expect(within(form).getByLabelText('Node template')).toHaveValue('t-1');
    expect(within(form).getByRole('link', { name: 'general-spot' })).toHaveAttribute('href', '/templates/t-1');
    expect(within(form).getByLabelText('Excluded sizes')).toBeDisabled();

    await user.selectOptions(within(form).getByLabelText('Node template'), '');
    expect(within(form).getByLabelText('Excluded sizes')).toBeEnabled();
    await user.type(within(form).getByLabelText('Excluded sizes'), 'metal');
    await user.click(within(form).getByRole('button', { name: 'Save policy' }));
    expect(await screen.findByText('Optimization policy saved.')).toBeInTheDocument();
    const put = calls.find((call) => call.method === 'PUT');
    expect(put?.body).not.toHaveProperty('template_id');
    expect(put?.body).toMatchObject({ template: { excluded_sizes: ['metal'] } });
  });

  it('shows viewers which template the cluster follows', async () => {
    setup('viewer', { ...policy, template_id: 't-2', template_name: 'graviton-hybrid' });
    renderApp('/clusters/c-1');

    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    expect(within(form).getByLabelText('Node template')).toBeDisabled();
    expect(within(form).getByLabelText('Node template')).toHaveValue('t-2');
    expect(within(form).getByText(/The fields below come from/)).toHaveTextContent('graviton-hybrid');
  });
});
