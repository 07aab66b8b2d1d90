import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { apiError, json, makeMe, mockApi, renderApp, signIn } from '../../../test/api';
import type { Override } from '../../clusters/overrides';
import type { ClusterProgress, OverrideProgress, PlatformOverride } from './emergency';
import { switchedRatio, switchedText } from './emergency';

const superAdmin = makeMe('owner', { platform_role: 'super_admin' });

const override: Override = {
  id: 'o-1',
  scope: 'platform',
  cluster_id: null,
  instance_id: null,
  replacement_instance_id: null,
  reason: 'spot incident us-east-1',
  created_by: 'u-self',
  created_at: '2026-11-29T10:00:00Z',
  expires_at: null,
  active: true,
  ended_at: null,
  ended_by: null,
  end_reason: null,
};

function cluster(overrides: Partial<ClusterProgress>): ClusterProgress {
  return {
    organization_id: 'org-1',
    organization_name: 'Acme Corp',
    cluster_id: 'c-1',
    cluster_name: 'prod-eks',
    job_id: 'j-1',
    job_status: 'running',
    job_message: null,
    dry_run: false,
    nodes_to_switch: 3,
    planned: true,
    nodes_switched: 1,
    blocked: 0,
    ...overrides,
  };
}

function progress(clusters: ClusterProgress[]): OverrideProgress {
  const finished = clusters.filter((c) => ['succeeded', 'failed', 'cancelled'].includes(c.job_status ?? '')).length;
  const total = clusters.filter((c) => c.job_status != null).length;
  const toSwitch = clusters.reduce((n, c) => n + c.nodes_to_switch, 0);
  const switched = clusters.reduce((n, c) => n + c.nodes_switched, 0);
  const complete = total === clusters.length && finished === total;
  return {
    clusters,
    nodes_to_switch: toSwitch,
    nodes_switched: switched,
    blocked: 0,
    jobs_total: total,
    jobs_finished: finished,
    jobs_failed: clusters.filter((c) => c.job_status === 'failed').length,
    clusters_waiting: clusters.length - total,
    complete,
    all_switched: complete && switched === toSwitch,
  };
}

const running: PlatformOverride = {
  override,
  progress: progress([
    cluster({}),
    cluster({ organization_id: 'org-2', organization_name: 'Globex', cluster_id: 'c-2', cluster_name: 'globex-eks', job_status: 'queued', nodes_switched: 0, nodes_to_switch: 2, planned: false }),
  ]),
};

const done: PlatformOverride = {
  override,
  progress: progress([
    cluster({ job_status: 'succeeded', nodes_switched: 3 }),
    cluster({ organization_id: 'org-2', organization_name: 'Globex', cluster_id: 'c-2', cluster_name: 'globex-eks', job_status: 'succeeded', nodes_switched: 2, nodes_to_switch: 2 }),
  ]),
};

function setup(handlers: Parameters<typeof mockApi>[0]) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(superAdmin),
    'GET /api/admin/operations': () => apiError(503, 'unavailable', 'not in this test'),
    ...handlers,
  });
}

const card = () => screen.getByRole('region', { name: 'Global controls' });

describe('progress helpers', () => {
  it('reads nodes switched out of nodes to switch', () => {
    expect(switchedText({ nodes_switched: 145, nodes_to_switch: 145 })).toBe('145/145 nodes switched');
    expect(switchedRatio({ nodes_switched: 29, nodes_to_switch: 145, complete: false })).toBeCloseTo(0.2);
    expect(switchedRatio({ nodes_switched: 0, nodes_to_switch: 0, complete: false })).toBe(0);
    expect(switchedRatio({ nodes_switched: 0, nodes_to_switch: 0, complete: true })).toBe(1);
  });
});

describe('Emergency override on the live operations page', () => {
  it('asks for a reason and a duration before switching ALL nodes', async () => {
    let started = false;
    const { calls } = setup({
      'GET /api/admin/overrides': () => json({ items: started ? [running] : [] }),
      'POST /api/admin/force-on-demand': () => {
        started = true;
        return json({ override, jobs: [], waiting_clusters: [] }, { status: 202 });
      },
    });
    const user = userEvent.setup();
    renderApp('/admin/operations');
    await user.click(await within(await screen.findByRole('region', { name: 'Global controls' })).findByRole('button', { name: 'Manual override' }));
    const dialog = await screen.findByRole('dialog', { name: 'Switch ALL nodes to on-demand?' });
    const confirm = within(dialog).getByRole('button', { name: 'Switch all nodes' });
    expect(confirm).toBeDisabled();
    await user.type(within(dialog).getByLabelText('Reason'), '   ');
    await user.tab();
    expect(within(dialog).getByText('A reason is required')).toBeInTheDocument();
    expect(confirm).toBeDisabled();
    await user.clear(within(dialog).getByLabelText('Reason'));
    await user.type(within(dialog).getByLabelText('Reason'), 'spot incident us-east-1');
    await user.selectOptions(within(dialog).getByLabelText('Duration'), '12');
    expect(within(dialog).getByText(/for 12 hours, then go back to their policies/)).toBeInTheDocument();
    await user.click(confirm);
    await waitFor(() => expect(calls.some((c) => c.method === 'POST' && c.url.pathname === '/api/admin/force-on-demand')).toBe(true));
    expect(calls.find((c) => c.method === 'POST')?.body).toEqual({ reason: 'spot incident us-east-1', duration_hours: 12 });
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    // The card now follows the override.
    expect(await within(card()).findByText('1/5 nodes switched')).toBeInTheDocument();
  });

  it('sends null for "until revoked" and shows the server refusal', async () => {
    const { calls } = setup({
      'GET /api/admin/overrides': () => json({ items: [] }),
      'POST /api/admin/force-on-demand': () => apiError(422, 'validation_failed', 'reason is required for the platform-wide emergency override', 'reason'),
    });
    const user = userEvent.setup();
    renderApp('/admin/operations');
    await user.click(await within(await screen.findByRole('region', { name: 'Global controls' })).findByRole('button', { name: 'Manual override' }));
    const dialog = await screen.findByRole('dialog', { name: 'Switch ALL nodes to on-demand?' });
    await user.type(within(dialog).getByLabelText('Reason'), 'maintenance');
    await user.selectOptions(within(dialog).getByLabelText('Duration'), 'until');
    await user.click(within(dialog).getByRole('button', { name: 'Switch all nodes' }));
    expect(await within(dialog).findByText('reason is required for the platform-wide emergency override')).toBeInTheDocument();
    expect(calls.find((c) => c.method === 'POST')?.body).toEqual({ reason: 'maintenance', duration_hours: null });
  });

  it('polls the progress every 2 s, shows per-cluster rows and the success message at 100 %', async () => {
    let reads = 0;
    const { calls } = setup({
      'GET /api/admin/overrides': () => {
        reads += 1;
        return json({ items: [reads === 1 ? running : done] });
      },
    });
    renderApp('/admin/operations');
    const region = await screen.findByRole('region', { name: 'Global controls' });
    expect(await within(region).findByText('1/5 nodes switched')).toBeInTheDocument();
    expect(within(region).getByRole('progressbar', { name: 'Override progress' })).toHaveAttribute('value', '20');
    const rows = within(region).getByRole('table', { name: 'Clusters under the override' });
    expect(within(rows).getByText('Globex')).toBeInTheDocument();
    expect(within(rows).getByText('globex-eks').closest('tr')).toHaveTextContent('0/2 (est.)');
    expect(within(region).queryByText('All nodes on on-demand. Safe for maintenance.')).not.toBeInTheDocument();
    expect(within(region).getByText(/spot incident us-east-1/)).toBeInTheDocument();
    // The next poll (2 s later) finds every job done.
    expect(await within(region).findByText('All nodes on on-demand. Safe for maintenance.', {}, { timeout: 4000 })).toBeInTheDocument();
    expect(within(region).getByText('5/5 nodes switched')).toBeInTheDocument();
    expect(within(region).getByRole('progressbar', { name: 'Override progress' })).toHaveAttribute('value', '100');
    expect(calls.filter((c) => c.url.pathname === '/api/admin/overrides').length).toBeGreaterThanOrEqual(2);
  });

  it('reports clusters that could not be switched instead of success', async () => {
    const failed: PlatformOverride = {
      override,
      progress: progress([
        cluster({ job_status: 'succeeded', nodes_switched: 3 }),
        cluster({ cluster_id: 'c-2', cluster_name: 'no-agent', job_status: 'failed', job_message: 'no connected agent on this cluster', nodes_switched: 0, nodes_to_switch: 4, planned: false }),
      ]),
    };
    setup({ 'GET /api/admin/overrides': () => json({ items: [failed] }) });
    renderApp('/admin/operations');
    const region = await screen.findByRole('region', { name: 'Global controls' });
    expect(await within(region).findByText(/4 nodes could not be switched/)).toBeInTheDocument();
    expect(within(region).getByText('no connected agent on this cluster')).toBeInTheDocument();
    expect(within(region).queryByText('All nodes on on-demand. Safe for maintenance.')).not.toBeInTheDocument();
  });

  it('reverts the override in force', async () => {
    let revoked = false;
    const { calls } = setup({
      'GET /api/admin/overrides': () =>
        json({ items: [revoked ? { ...done, override: { ...override, active: false, ended_at: '2026-11-29T10:30:00Z', end_reason: 'revoked' } } : done] }),
      'POST /api/overrides/o-1/revoke': () => {
        revoked = true;
        return json({ override: { ...override, active: false, end_reason: 'revoked' }, jobs: [], waiting_clusters: [] });
      },
      'GET /api/overrides': () => json({ items: [] }),
    });
    const user = userEvent.setup();
    renderApp('/admin/operations');
    const region = await screen.findByRole('region', { name: 'Global controls' });
    await user.click(await within(region).findByRole('button', { name: 'Revert' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'POST' && c.url.pathname === '/api/overrides/o-1/revoke')).toBe(true));
    expect(await within(region).findByRole('button', { name: 'Manual override' })).toBeInTheDocument();
    expect(within(region).getByLabelText('Last emergency override')).toHaveTextContent('revoked');
  });
});
