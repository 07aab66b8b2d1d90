import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { json, makeMe, mockApi, renderApp, signIn } from '../../../test/api';

const superAdmin = makeMe('owner', { platform_role: 'super_admin' });

describe('Creating an organization by invite', () => {
  it('sends an invite instead of generating a password and shows the link once', async () => {
    signIn();
    const { calls } = mockApi({
      'GET /api/auth/me': () => json(superAdmin),
      'GET /api/admin/clients': () => json({ items: [] }),
      'POST /api/admin/clients/invite': () =>
        json(
          {
            client: {
              id: 'org-new',
              name: 'Initech',
              created_at: '2026-11-29T10:00:00Z',
              status: 'active',
              platform: false,
              members: 0,
              accounts: 0,
              clusters: 0,
              nodes: 0,
              monthly_spend: 0,
              monthly_savings: 0,
              agents_connected: 0,
            },
            owner_email: 'owner@initech.test',
            invite_url: 'http://127.0.0.1:8080/accept-owner-invite?token=abc',
            expires_at: '2026-12-06T10:00:00Z',
          },
          { status: 201 },
        ),
    });
    renderApp('/admin/clients');
    await userEvent.click(await screen.findByRole('button', { name: 'New organization' }));
    const dialog = screen.getByRole('dialog');
    await userEvent.type(within(dialog).getByLabelText('Organization name'), 'Initech');
    await userEvent.type(within(dialog).getByLabelText('Owner e-mail'), 'owner@initech.test');
    await userEvent.click(within(dialog).getByLabelText('Invite the owner by link instead'));
    expect(within(dialog).getByText(/an invite link with which its owner chooses a password/)).toBeInTheDocument();
    await userEvent.click(within(dialog).getByRole('button', { name: 'Create organization' }));
    expect(await screen.findByLabelText('Invite link')).toHaveTextContent('http://127.0.0.1:8080/accept-owner-invite?token=abc');
    expect(screen.queryByLabelText('Generated password')).not.toBeInTheDocument();
    expect(calls.find((c) => c.method === 'POST')?.body).toEqual({ name: 'Initech', owner_email: 'owner@initech.test' });
    expect(calls.some((c) => c.method === 'POST' && c.url.pathname === '/api/admin/clients')).toBe(false);
  });
});
