import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Role } from '../../api/types';
import { apiError, json, makeCluster, makeInstance, makeMe, mockApi, renderApp, signIn } from '../../test/api';
import { formatDateTime } from '../../lib/format';
import { diffPolicies, type ClusterPolicy, type PolicyVersion } from './policy';

const base: ClusterPolicy = {
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

const v1: PolicyVersion = { version: 1, created_at: '2024-05-01T09:00:00Z', created_by: 'ana@acme.test', policy: base };
const v2: PolicyVersion = {
  version: 2,
  created_at: '2024-05-02T09:00:00Z',
  created_by: 'bob@acme.test',
  policy: { ...base, aggressiveness: 'aggressive', template: { ...base.template, capacity_type: 'hybrid' } },
};
const v3: PolicyVersion = {
  version: 3,
  created_at: '2024-05-03T09:00:00Z',
  created_by: 'me@acme.test',
  note: 'tighter budget',
  policy: { ...v2.policy, disruption_budget: { max_percent: 5, max_nodes: 2, max_waves: null }, excluded_namespaces: ['kube-system', 'payments'] },
};
const current: ClusterPolicy = { ...v3.policy, version: 3, updated_at: v3.created_at, updated_by: 'me@acme.test' };

type Handlers = Parameters<typeof mockApi>[0];

function setup(role: Role, policy: ClusterPolicy, handlers: Handlers = {}) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe(role)),
    'GET /api/clusters/c-1': () => json({ cluster: makeCluster(), node_groups: [], nodes: [makeInstance()] }),
    'GET /api/clusters/c-1/policy': () => json(policy),
    'GET /api/clusters/c-1/policy/versions': () => json({ items: [v3, v2, v1] }),
    'GET /api/jobs': () => json({ items: [] }),
    'GET /api/templates': () => json({ items: [] }),
    ...handlers,
  });
}

async function openHistory() {
  const user = userEvent.setup();
  renderApp('/clusters/c-1');
  await screen.findByRole('form', { name: 'Optimization policy' });
  await user.click(screen.getByRole('button', { name: 'History' }));
  const dialog = await screen.findByRole('dialog', { name: 'Policy history' });
  await within(dialog).findByRole('list', { name: 'Policy versions' });
  return { user, dialog };
}

describe('Policy version line', () => {
  it('names the saved version, who saved it and when', async () => {
    setup('viewer', current);
    renderApp('/clusters/c-1');
    await screen.findByRole('form', { name: 'Optimization policy' });
    expect(screen.getByText(`Version 3 · saved by me@acme.test · ${formatDateTime(v3.created_at)}`)).toBeInTheDocument();
  });

  it('says when the cluster still runs on the defaults', async () => {
    setup('owner', base);
    renderApp('/clusters/c-1');
    await screen.findByRole('form', { name: 'Optimization policy' });
    expect(screen.getByText('Defaults — not saved yet')).toBeInTheDocument();
  });

  it('never sends the version metadata back with a save', async () => {
    const { calls } = setup('owner', current, {
      'PATCH /api/clusters/c-1/policy': async (request) => json({ ...current, ...((await request.json()) as object), version: 4, updated_by: 'me@acme.test', updated_at: '2024-05-04T09:00:00Z' }),
    });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');
    const form = await screen.findByRole('form', { name: 'Optimization policy' });
    await user.selectOptions(within(form).getByLabelText('Aggressiveness'), 'conservative');
    await user.click(within(form).getByRole('button', { name: 'Save policy' }));
    expect(await screen.findByText('Optimization policy saved.')).toBeInTheDocument();
    const patch = calls.find((call) => call.method === 'PATCH');
    expect(patch?.body).toEqual({ aggressiveness: 'conservative' });
    expect(await screen.findByText(/^Version 4 · saved by me@acme.test/)).toBeInTheDocument();
  });
});

describe('Policy history', () => {
  it('lists the versions, newest first, with who, when, the note and what changed', async () => {
    setup('viewer', current);
    const { dialog } = await openHistory();

    const rows = within(within(dialog).getByRole('list', { name: 'Policy versions' })).getAllByRole('listitem', { name: /^Version \d+$/ });
    expect(rows.map((row) => row.getAttribute('aria-label'))).toEqual(['Version 3', 'Version 2', 'Version 1']);

    const [third, second, first] = rows as [HTMLElement, HTMLElement, HTMLElement];
    expect(third).toHaveTextContent('Current');
    expect(third).toHaveTextContent('me@acme.test');
    expect(third).toHaveTextContent(formatDateTime(v3.created_at));
    expect(within(third).getByText('tighter budget')).toBeInTheDocument();
    expect(within(within(third).getByRole('list', { name: 'Changes in version 3' })).getAllByRole('listitem').map((item) => item.textContent)).toEqual([
      'excluded_namespaces: kube-system → kube-system, payments',
      'disruption_budget.max_percent: 10 → 5',
      'disruption_budget.max_nodes: none → 2',
    ]);
    expect(within(second).getByText('aggressiveness: balanced → aggressive')).toBeInTheDocument();
    expect(within(second).getByText('template.capacity_type: spot → hybrid')).toBeInTheDocument();
    expect(second).toHaveTextContent('bob@acme.test');
    expect(first).toHaveTextContent('First saved version.');
  });

  it('hides Restore from viewers', async () => {
    setup('viewer', current);
    const { dialog } = await openHistory();
    expect(within(dialog).queryByRole('button', { name: /Restore/ })).not.toBeInTheDocument();
  });

  it('restores an older version: POSTs its number, shows the restored policy and its new version', async () => {
    const restored: ClusterPolicy = { ...v1.policy, version: 4, updated_at: '2024-05-04T09:00:00Z', updated_by: 'me@acme.test' };
    const { calls } = setup('owner', current, {
      'POST /api/clusters/c-1/policy/revert': () => json(restored),
    });
    const { user, dialog } = await openHistory();
    // The current version cannot be restored onto itself.
    expect(within(dialog).queryByRole('button', { name: 'Restore version 3' })).not.toBeInTheDocument();
    const form = screen.getByRole('form', { name: 'Optimization policy' });
    expect(within(form).getByLabelText('Aggressiveness')).toHaveValue('aggressive');

    const versionsBefore = calls.filter((call) => call.url.pathname.endsWith('/policy/versions')).length;
    await user.click(within(dialog).getByRole('button', { name: 'Restore version 1' }));

    expect(await screen.findByText('Restored version 1 as version 4')).toBeInTheDocument();
    await waitFor(() => expect(screen.queryByRole('dialog', { name: 'Policy history' })).not.toBeInTheDocument());
    expect(calls.find((call) => call.url.pathname.endsWith('/policy/revert'))?.body).toEqual({ version: 1 });
    await waitFor(() => expect(within(form).getByLabelText('Aggressiveness')).toHaveValue('balanced'));
    expect(within(form).getByLabelText('Capacity type')).toHaveValue('spot');
    expect(screen.getByText(/^Version 4 · saved by me@acme.test/)).toBeInTheDocument();
    // The card shows the server's policy: nothing is left to save.
    expect(within(form).getByRole('button', { name: 'Save policy' })).toBeDisabled();
    // The version list is stale now and is fetched again when shown.
    await user.click(screen.getByRole('button', { name: 'History' }));
    await screen.findByRole('dialog', { name: 'Policy history' });
    await waitFor(() => expect(calls.filter((call) => call.url.pathname.endsWith('/policy/versions')).length).toBeGreaterThan(versionsBefore));
  });

  it('shows a failed restore in the dialog', async () => {
    setup('admin', current, {
      'POST /api/clusters/c-1/policy/revert': () => apiError(422, 'validation_failed', 'version 2 does not exist', 'version'),
    });
    const { user, dialog } = await openHistory();
    await user.click(within(dialog).getByRole('button', { name: 'Restore version 2' }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('Could not restore the version: version 2 does not exist');
    expect(screen.getByRole('dialog', { name: 'Policy history' })).toBeInTheDocument();
  });
});

describe('diffPolicies', () => {
  it('names the linked template and ignores version metadata and key order', () => {
    const linked: ClusterPolicy = { ...base, template_id: 't-2', template_name: 'graviton-hybrid', version: 7, updated_by: 'x@y.z' };
    expect(diffPolicies(base, linked)).toEqual(['template_id: own → graviton-hybrid']);
    const reordered = Object.fromEntries(Object.entries(base).reverse()) as unknown as ClusterPolicy;
    expect(diffPolicies(base, reordered)).toEqual([]);
  });

  it('counts rules and treats a missing field like an empty one', () => {
    const withRule: ClusterPolicy = { ...base, on_demand_minimums: [{ selector: { app: 'api' }, percent: 50 }], dry_run: true };
    expect(diffPolicies(base, withRule)).toEqual(['dry_run: off → on', 'on_demand_minimums: none → 1 rule']);
    const { disruption_budget: _budget, ...older } = base;
    expect(diffPolicies({ ...older, disruption_budget: { max_percent: 10, max_nodes: null } }, base)).toEqual([]);
  });
});
