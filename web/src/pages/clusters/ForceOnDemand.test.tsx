import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Role } from '../../api/types';
import { json, makeCluster, makeInstance, makeMe, mockApi, renderApp, signIn } from '../../test/api';
import { confirmText, overrideTimeLeft, type Override } from './overrides';

const active: Override = {
  id: 'o-1',
  scope: 'cluster',
  cluster_id: 'c-1',
  instance_id: null,
  replacement_instance_id: null,
  reason: 'incident 42',
  created_by: 'u-self',
  created_at: '2024-05-01T09:00:00Z',
  expires_at: new Date(Date.now() + (5 * 60 + 12) * 60_000).toISOString(),
  active: true,
  ended_at: null,
  ended_by: null,
  end_reason: null,
};

const queuedJob = {
  id: 'j-9',
  kind: 'force_on_demand',
  target_id: 'c-1',
  status: 'queued',
  progress: 0,
  message: null,
  dry_run: false,
  plan: null,
  result: null,
  created_at: '2024-05-01T09:00:00Z',
  started_at: null,
  finished_at: null,
  heartbeat_at: null,
  safe_mode: false,
  cancel_requested_at: null,
};

function setup(role: Role, overrides: Override[] = [], extra: Parameters<typeof mockApi>[0] = {}) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe(role)),
    'GET /api/clusters/c-1': () => json({ cluster: makeCluster(), node_groups: [], nodes: [makeInstance()] }),
    'GET /api/jobs': () => json({ items: [] }),
    'GET /api/jobs/j-9': () => json(queuedJob),
    'GET /api/templates': () => json({ items: [] }),
    'GET /api/overrides': () => json({ items: overrides }),
    ...extra,
  });
}

describe('overrideTimeLeft', () => {
  const now = Date.parse('2024-05-01T10:00:00Z');
  it('counts down, says "until revoked" and how it ended', () => {
    expect(overrideTimeLeft({ active: true, expires_at: '2024-05-01T15:12:00Z', end_reason: null }, now)).toBe('ends in 5 h 12 min');
    expect(overrideTimeLeft({ active: true, expires_at: '2024-05-01T10:07:00Z', end_reason: null }, now)).toBe('ends in 7 min');
    expect(overrideTimeLeft({ active: true, expires_at: '2024-05-05T10:00:00Z', end_reason: null }, now)).toBe('ends in 4 days');
    expect(overrideTimeLeft({ active: true, expires_at: null, end_reason: null }, now)).toBe('until revoked');
    expect(overrideTimeLeft({ active: false, expires_at: null, end_reason: 'expired' }, now)).toBe('expired');
    expect(overrideTimeLeft({ active: false, expires_at: null, end_reason: 'revoked' }, now)).toBe('revoked');
  });

  it('confirms what will change, naming the scope and the span', () => {
    expect(confirmText({ scope: 'instance', id: 'r', label: 'i-123' }, 6)).toBe('Force i-123 to on-demand for 6 hours?');
    expect(confirmText({ scope: 'cluster', id: 'c', label: 'prod-a', nodes: 45 }, 12)).toBe('Force all 45 nodes in prod-a to on-demand for 12 hours?');
    expect(confirmText({ scope: 'organization', label: 'Acme', clusters: 3 }, null)).toBe('Force ALL clusters (3) of Acme to on-demand until you revoke it?');
  });
});

describe('Force on-demand on the cluster page', () => {
  it('asks how long, confirms and posts the duration; the job panel follows the force job', async () => {
    const { calls } = setup('owner', [], {
      'POST /api/clusters/c-1/force-on-demand': () => json({ override: { ...active, reason: null }, jobs: [queuedJob], waiting_clusters: [] }, { status: 202 }),
    });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');
    await user.click(await screen.findByRole('button', { name: 'Force on-demand' }));
    const dialog = await screen.findByRole('dialog', { name: /Force .* to on-demand/ });
    await user.selectOptions(within(dialog).getByLabelText('How long?'), '12');
    expect(within(dialog).getByText(/to on-demand for 12 hours\?$/)).toBeInTheDocument();
    await user.click(within(dialog).getByRole('button', { name: 'Apply' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'POST' && c.url.pathname === '/api/clusters/c-1/force-on-demand')).toBe(true));
    const post = calls.find((c) => c.method === 'POST');
    expect(post?.body).toEqual({ duration_hours: 12, reason: null });
    await waitFor(() => expect(screen.queryByRole('dialog', { name: /Force .* to on-demand/ })).not.toBeInTheDocument());
  });

  it('refuses a custom duration outside 1–720 hours', async () => {
    setup('owner');
    const user = userEvent.setup();
    renderApp('/clusters/c-1');
    await user.click(await screen.findByRole('button', { name: 'Force on-demand' }));
    const dialog = await screen.findByRole('dialog', { name: /Force .* to on-demand/ });
    await user.selectOptions(within(dialog).getByLabelText('How long?'), 'custom');
    await user.type(within(dialog).getByLabelText('Hours'), '900');
    expect(within(dialog).getByText('Enter whole hours from 1 to 720')).toBeInTheDocument();
    expect(within(dialog).getByRole('button', { name: 'Apply' })).toBeDisabled();
  });

  it('lists the overrides in force with a countdown, and revokes one', async () => {
    const { calls } = setup('owner', [active], {
      'POST /api/overrides/o-1/revoke': () => json({ override: { ...active, active: false, end_reason: 'revoked' }, jobs: [], waiting_clusters: [] }),
    });
    const user = userEvent.setup();
    renderApp('/clusters/c-1');
    const list = await screen.findByRole('list', { name: 'Manual overrides' });
    expect(list).toHaveTextContent('Whole cluster');
    expect(list).toHaveTextContent(/ends in 5 h 1[12] min/);
    expect(list).toHaveTextContent('incident 42');
    await user.click(within(list).getByRole('button', { name: 'Revoke' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'POST' && c.url.pathname === '/api/overrides/o-1/revoke')).toBe(true));
  });

  it('shows viewers the overrides but no way to force or revoke', async () => {
    setup('viewer', [active]);
    renderApp('/clusters/c-1');
    const list = await screen.findByRole('list', { name: 'Manual overrides' });
    expect(within(list).queryByRole('button', { name: 'Revoke' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Force on-demand' })).not.toBeInTheDocument();
  });
});
