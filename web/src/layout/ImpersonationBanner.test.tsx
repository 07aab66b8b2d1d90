import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { getAccessToken, getRefreshToken, storeTokens } from '../auth/session';
import { startImpersonation } from '../auth/impersonation';
import { json, makeMe, mockApi, renderApp, tokens } from '../test/api';

const impersonated = makeMe('owner', { impersonated_by: 'u-admin' });
const view = {
  organization_id: 'org-1',
  organization_name: 'Acme Corp',
  as_user_id: 'u-self',
  as_email: 'me@acme.test',
  role: 'owner',
  admin_id: 'u-admin',
  admin_email: 'root@platform.test',
  started_at: '2026-01-01T10:00:00Z',
  expires_at: '2026-01-01T10:30:00Z',
};

afterEach(() => localStorage.clear());

describe('Impersonation banner', () => {
  it('stays on every page while impersonating and ends the impersonation', async () => {
    const user = userEvent.setup();
    storeTokens({ ...tokens, refresh_token: 'admin-refresh' });
    startImpersonation({ ...tokens, access_token: 'imp-access', refresh_token: 'imp-refresh' });
    const admin = makeMe('owner', { platform_role: 'super_admin' });
    let ended = false;
    const { calls } = mockApi({
      'GET /api/auth/me': () => json(ended ? admin : impersonated),
      'GET /api/admin/impersonation': () => json(view),
      'GET /api/audit-logs': () => json({ items: [] }),
      'GET /api/admin/clients': () => json({ items: [] }),
      'POST /api/admin/impersonation/end': () => {
        ended = true;
        return new Response(null, { status: 204 });
      },
      'POST /api/auth/refresh': () => json({ ...tokens, access_token: 'admin-access-2', refresh_token: 'admin-refresh-2' }),
    });
    renderApp('/audit-logs');
    const banner = await screen.findByRole('region', { name: 'Impersonation' });
    await waitFor(() => expect(banner).toHaveTextContent('You are viewing Acme Corp as root@platform.test'));
    // Platform entries are hidden while acting as the client.
    expect(screen.queryByRole('link', { name: /Clients/ })).not.toBeInTheDocument();

    await user.click(within(banner).getByRole('button', { name: 'End impersonation' }));
    await waitFor(() => expect(getAccessToken()).toBe('admin-access-2'));
    expect(getRefreshToken()).toBe('admin-refresh-2');
    const end = calls.find((c) => c.url.pathname === '/api/admin/impersonation/end');
    expect(end?.authorization).toBe('Bearer imp-access');
    const refresh = calls.find((c) => c.url.pathname === '/api/auth/refresh');
    expect(refresh?.body).toEqual({ refresh_token: 'admin-refresh' });
    await waitFor(() => expect(screen.queryByRole('region', { name: 'Impersonation' })).not.toBeInTheDocument());
    expect(await screen.findByRole('heading', { name: 'Clients', level: 1 })).toBeInTheDocument();
  });

  it('is absent for a normal session', async () => {
    storeTokens(tokens);
    const { calls } = mockApi({
      'GET /api/auth/me': () => json(makeMe('owner')),
      'GET /api/audit-logs': () => json({ items: [] }),
    });
    renderApp('/audit-logs');
    expect(await screen.findByText('Acme Corp')).toBeInTheDocument();
    expect(screen.queryByRole('region', { name: 'Impersonation' })).not.toBeInTheDocument();
    expect(calls.some((c) => c.url.pathname === '/api/admin/impersonation')).toBe(false);
  });
});
