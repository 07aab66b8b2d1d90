import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Role } from '../../../api/types';
import { json, makeMe, mockApi, renderApp, signIn } from '../../../test/api';

const members = [
  { user_id: 'u-self', email: 'me@acme.test', role: 'viewer', joined_at: '2024-01-01T00:00:00Z' },
  { user_id: 'u-owner', email: 'owner@acme.test', role: 'owner', joined_at: '2024-01-01T00:00:00Z' },
  { user_id: 'u-admin', email: 'admin@acme.test', role: 'admin', joined_at: '2024-02-01T00:00:00Z' },
];

function setup(role: Role) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe(role)),
    'GET /api/org/members': () => json({ items: members.map((m) => (m.user_id === 'u-self' ? { ...m, role } : m)) }),
    'GET /api/org/invites': () =>
      json({ items: [{ id: 'i1', email: 'new@acme.test', role: 'viewer', expires_at: '2030-01-01T00:00:00Z', accepted_at: null }] }),
    'POST /api/org/invites': () =>
      json(
        { id: 'i2', email: 'ops@acme.test', role: 'admin', expires_at: '2030-01-01T00:00:00Z', token: 't', accept_url: 'http://localhost/invite/accept?token=t' },
        { status: 201 },
      ),
  });
}

describe('Team settings', () => {
  it('shows a viewer the member list without any mutating controls', async () => {
    const { calls } = setup('viewer');
    renderApp('/settings/team');

    const table = await screen.findByRole('table', { name: 'Organization members' });
    expect(within(table).getByText('owner@acme.test')).toBeInTheDocument();
    expect(within(table).getAllByRole('row')).toHaveLength(4);
    expect(screen.queryByRole('button', { name: 'Invite member' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /Remove/ })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /Revoke/ })).not.toBeInTheDocument();
    expect(screen.queryByRole('combobox')).not.toBeInTheDocument();
    expect(calls.some((call) => call.url.pathname === '/api/org/invites')).toBe(false);
  });

  it('lets an admin manage members other than themselves and owners', async () => {
    setup('admin');
    renderApp('/settings/team');

    await screen.findByRole('table', { name: 'Organization members' });
    expect(screen.getByRole('button', { name: 'Invite member' })).toBeInTheDocument();
    expect(screen.getByRole('combobox', { name: 'Role for admin@acme.test' })).toBeInTheDocument();
    expect(screen.queryByRole('combobox', { name: 'Role for owner@acme.test' })).not.toBeInTheDocument();
    expect(screen.queryByRole('combobox', { name: 'Role for me@acme.test' })).not.toBeInTheDocument();
    expect(await screen.findByRole('button', { name: 'Revoke invite for new@acme.test' })).toBeInTheDocument();
  });

  it('shows the accept link returned for a new invite', async () => {
    const { calls } = setup('owner');
    const user = userEvent.setup();
    renderApp('/settings/team');

    await user.click(await screen.findByRole('button', { name: 'Invite member' }));
    const dialog = screen.getByRole('dialog', { name: 'Invite a teammate' });
    await user.type(within(dialog).getByLabelText('Email'), 'ops@acme.test');
    await user.selectOptions(within(dialog).getByLabelText('Role'), 'admin');
    await user.click(within(dialog).getByRole('button', { name: 'Send invite' }));

    const created = await screen.findByRole('dialog', { name: 'Invitation created' });
    expect(within(created).getByLabelText('Invite link')).toHaveValue('http://localhost/invite/accept?token=t');
    expect(calls.find((call) => call.method === 'POST')?.body).toEqual({ email: 'ops@acme.test', role: 'admin' });
  });
});
