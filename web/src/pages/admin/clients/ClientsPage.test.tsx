import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Client } from '../../../api/types';
import { getRefreshToken } from '../../../auth/session';
import { hasStashedAdminSession } from '../../../auth/impersonation';
import { apiError, json, makeMe, mockApi, renderApp, signIn, tokens } from '../../../test/api';
import { agentHealth } from './api';

function makeClient(overrides: Partial<Client> = {}): Client {
  return {
    id: 'org-acme',
    name: 'Acme Corp',
    created_at: '2026-01-01T00:00:00Z',
    status: 'active',
    platform: false,
    members: 3,
    owner_email: 'owner@acme.test',
    accounts: 2,
    clusters: 3,
    nodes: 14,
    monthly_spend: 12345.67,
    monthly_savings: 2345.5,
    last_activity_at: '2026-01-02T10:00:00Z',
    agents_connected: 1,
    ...overrides,
  };
}

const platformOrg = makeClient({ id: 'org-platform', name: 'Platform', platform: true, owner_email: 'root@platform.test', accounts: 0, clusters: 0, nodes: 0, monthly_spend: 0, monthly_savings: 0, agents_connected: 0 });
const superAdmin = makeMe('owner', { platform_role: 'super_admin', organization: { id: 'org-platform', name: 'Platform', created_at: '2024-01-01T00:00:00Z' } });

function setup(items: Client[], extra: Parameters<typeof mockApi>[0] = {}) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(superAdmin),
    'GET /api/admin/clients': () => json({ items }),
    ...extra,
  });
}

afterEach(() => localStorage.clear());

describe('Clients admin page', () => {
  it('lists every organization with its figures and agent health', async () => {
    setup([platformOrg, makeClient()]);
    renderApp('/admin/clients');
    const table = await screen.findByRole('table', { name: 'Client registry' });
    const row = within(table).getByText('Acme Corp').closest('tr') as HTMLElement;
    expect(within(row).getByText('owner@acme.test')).toBeInTheDocument();
    expect(within(row).getByText('Active')).toBeInTheDocument();
    expect(within(row).getByText(/· 14 nodes/)).toBeInTheDocument();
    expect(within(row).getByText('$12,346')).toBeInTheDocument();
    expect(within(row).getByText('$2,346')).toBeInTheDocument();
    expect(within(row).getByText('1 / 3')).toBeInTheDocument();
    expect(within(row).getByRole('button', { name: 'Impersonate Acme Corp' })).toBeInTheDocument();
    // The platform's own organization offers no actions.
    const platformRow = within(table).getByText('Platform', { selector: '.model-name' }).closest('tr') as HTMLElement;
    expect(within(platformRow).queryByRole('button')).not.toBeInTheDocument();
    expect(screen.getByRole('link', { name: /Clients/ })).toBeInTheDocument();
    expect(screen.getByRole('link', { name: /System health/ })).toBeInTheDocument();
  });

  it('rates agent health by connected agents per cluster', () => {
    expect(agentHealth({ agents_connected: 3, clusters: 3 }).tone).toBe('success');
    expect(agentHealth({ agents_connected: 1, clusters: 3 }).tone).toBe('warning');
    expect(agentHealth({ agents_connected: 0, clusters: 3 }).tone).toBe('danger');
    expect(agentHealth({ agents_connected: 0, clusters: 0 })).toEqual({ label: '0 / 0', tone: 'neutral' });
  });

  it('creates an organization and shows the owner password only once', async () => {
    const user = userEvent.setup();
    const created = makeClient({ id: 'org-new', name: 'Globex', members: 1, accounts: 0, clusters: 0, nodes: 0 });
    const { calls } = setup([platformOrg], {
      'POST /api/admin/clients': () =>
        json({ client: created, owner_user_id: 'u-new', owner_email: 'boss@globex.test', password: 'Xk2pQ9rT7mW4nB8vC3hZ' }, { status: 201 }),
    });
    renderApp('/admin/clients');
    await user.click(await screen.findByRole('button', { name: 'New organization' }));
    const dialog = screen.getByRole('dialog', { name: 'New organization' });
    await user.type(within(dialog).getByLabelText('Organization name'), 'Globex');
    await user.type(within(dialog).getByLabelText('Owner e-mail'), 'boss@globex.test');
    await user.click(within(dialog).getByRole('button', { name: 'Create organization' }));

    const done = await screen.findByRole('dialog', { name: 'Organization created' });
    expect(within(done).getByLabelText('Generated password')).toHaveTextContent('Xk2pQ9rT7mW4nB8vC3hZ');
    expect(done).toHaveTextContent('shown only once');
    const post = calls.find((c) => c.method === 'POST');
    expect(post?.body).toEqual({ name: 'Globex', owner_email: 'boss@globex.test' });
    await user.click(within(done).getByRole('button', { name: 'Done' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    expect(screen.queryByText('Xk2pQ9rT7mW4nB8vC3hZ')).not.toBeInTheDocument();
  });

  it('shows a taken owner e-mail under the field', async () => {
    const user = userEvent.setup();
    setup([platformOrg], {
      'POST /api/admin/clients': () => apiError(409, 'conflict', 'an account with this email already exists', 'owner_email'),
    });
    renderApp('/admin/clients');
    await user.click(await screen.findByRole('button', { name: 'New organization' }));
    const dialog = screen.getByRole('dialog', { name: 'New organization' });
    await user.type(within(dialog).getByLabelText('Organization name'), 'Globex');
    await user.type(within(dialog).getByLabelText('Owner e-mail'), 'taken@globex.test');
    await user.click(within(dialog).getByRole('button', { name: 'Create organization' }));
    expect(await within(dialog).findByText('an account with this email already exists')).toBeInTheDocument();
    expect(screen.queryByRole('dialog', { name: 'Organization created' })).not.toBeInTheDocument();
  });

  it('blocks only after confirmation, with the reason', async () => {
    const user = userEvent.setup();
    const { calls } = setup([makeClient()], {
      'POST /api/admin/clients/org-acme/block': () => json(makeClient({ status: 'blocked', blocked_at: '2026-01-03T00:00:00Z' })),
    });
    renderApp('/admin/clients');
    await user.click(await screen.findByRole('button', { name: 'Block Acme Corp' }));
    let dialog = screen.getByRole('dialog', { name: 'Block this organization?' });
    expect(dialog).toHaveTextContent('revoked at once');
    await user.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(calls.some((c) => c.method === 'POST')).toBe(false);

    await user.click(screen.getByRole('button', { name: 'Block Acme Corp' }));
    dialog = screen.getByRole('dialog', { name: 'Block this organization?' });
    await user.type(within(dialog).getByLabelText('Reason (optional)'), 'unpaid invoices');
    await user.click(within(dialog).getByRole('button', { name: 'Block Acme Corp' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    const post = calls.filter((c) => c.method === 'POST');
    expect(post.map((c) => c.url.pathname)).toEqual(['/api/admin/clients/org-acme/block']);
    expect(post[0]?.body).toEqual({ reason: 'unpaid invoices' });
  });

  it('unblocks, deletes and restores through their confirmations', async () => {
    const user = userEvent.setup();
    const { calls } = setup([makeClient({ status: 'blocked', blocked_at: '2026-01-03T00:00:00Z' }), makeClient({ id: 'org-gone', name: 'Gone Inc', status: 'deleted', deleted_at: '2026-01-03T00:00:00Z', purge_after: '2026-02-02T00:00:00Z' })], {
      'POST /api/admin/clients/org-acme/unblock': () => json(makeClient()),
      'DELETE /api/admin/clients/org-acme': () => json(makeClient({ status: 'deleted' })),
      'POST /api/admin/clients/org-gone/restore': () => json(makeClient({ id: 'org-gone', name: 'Gone Inc' })),
    });
    renderApp('/admin/clients');
    await user.click(await screen.findByRole('button', { name: 'Unblock Acme Corp' }));
    await user.click(within(screen.getByRole('dialog', { name: 'Unblock this organization?' })).getByRole('button', { name: 'Unblock Acme Corp' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    await user.click(screen.getByRole('button', { name: 'Delete Acme Corp' }));
    expect(screen.getByRole('dialog', { name: 'Delete this organization?' })).toHaveTextContent('can be restored');
    await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Delete Acme Corp' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    await user.click(screen.getByRole('button', { name: 'Restore Gone Inc' }));
    await user.click(within(screen.getByRole('dialog', { name: 'Restore this organization?' })).getByRole('button', { name: 'Restore Gone Inc' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    expect(calls.filter((c) => c.method !== 'GET').map((c) => `${c.method} ${c.url.pathname}`)).toEqual([
      'POST /api/admin/clients/org-acme/unblock',
      'DELETE /api/admin/clients/org-acme',
      'POST /api/admin/clients/org-gone/restore',
    ]);
  });

  it('asks for deleted organizations only when shown', async () => {
    const user = userEvent.setup();
    const { calls } = setup([makeClient()]);
    renderApp('/admin/clients');
    await screen.findByRole('table', { name: 'Client registry' });
    await user.click(screen.getByLabelText('Show deleted organizations'));
    await waitFor(() => expect(calls.some((c) => c.url.pathname === '/api/admin/clients' && c.url.searchParams.get('include_deleted') === 'true')).toBe(true));
    expect(calls.find((c) => c.url.pathname === '/api/admin/clients')?.url.searchParams.get('include_deleted')).toBe('false');
  });

  it('impersonates: keeps the admin session aside and switches to the client', async () => {
    const user = userEvent.setup();
    const impersonation = { ...tokens, access_token: 'imp-access', refresh_token: 'imp-refresh' };
    let impersonating = false;
    const { calls } = setup([makeClient()], {
      'GET /api/auth/me': () => json(impersonating ? makeMe('owner', { impersonated_by: 'u-admin' }) : superAdmin),
      'POST /api/admin/impersonate': () => {
        impersonating = true;
        return json(impersonation);
      },
      'GET /api/admin/impersonation': () => json({ organization_id: 'org-acme', organization_name: 'Acme Corp', as_user_id: 'u-owner', as_email: 'owner@acme.test', role: 'owner', admin_id: 'u-admin', admin_email: 'root@platform.test', started_at: '2026-01-01T10:00:00Z', expires_at: '2026-01-01T10:30:00Z' }),
    });
    renderApp('/admin/clients');
    await user.click(await screen.findByRole('button', { name: 'Impersonate Acme Corp' }));
    await waitFor(() => expect(getRefreshToken()).toBe('imp-refresh'));
    expect(hasStashedAdminSession()).toBe(true);
    expect(calls.find((c) => c.method === 'POST')?.body).toEqual({ organization_id: 'org-acme' });
    // The shell refetches who we are: the banner appears and platform entries disappear.
    expect(await screen.findByRole('region', { name: 'Impersonation' })).toHaveTextContent('as root@platform.test');
    expect(screen.queryByRole('link', { name: /System health/ })).not.toBeInTheDocument();
    const imp = calls.find((c) => c.url.pathname === '/api/admin/impersonation');
    expect(imp?.authorization).toBe('Bearer imp-access');
  });

  it('is not available to customers', async () => {
    signIn();
    const { calls } = mockApi({ 'GET /api/auth/me': () => json(makeMe('owner')) });
    renderApp('/admin/clients');
    expect(await screen.findByText('You are not allowed to view this page')).toBeInTheDocument();
    expect(calls.some((c) => c.url.pathname.startsWith('/api/admin'))).toBe(false);
    expect(screen.queryByRole('link', { name: /Clients/ })).not.toBeInTheDocument();
  });
});
