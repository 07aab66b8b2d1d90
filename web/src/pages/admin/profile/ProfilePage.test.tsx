import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { apiError, json, makeMe, mockApi, renderApp, signIn } from '../../../test/api';

const profile = { id: 'u-self', email: 'root@platform.test', name: 'Root', platform_role: 'super_admin', created_at: '2026-01-01T00:00:00Z' };

function setup(extra: Parameters<typeof mockApi>[0] = {}) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe('owner', { platform_role: 'super_admin' })),
    'GET /api/auth/profile': () => json(profile),
    ...extra,
  });
}

describe('Profile page', () => {
  it('saves name and e-mail with the current password, sending the bearer token', async () => {
    const { calls } = setup({
      'PUT /api/auth/profile': async (request) => json({ ...profile, ...(await request.json()) }),
    });
    renderApp('/profile');
    const form = await screen.findByRole('form', { name: 'Name and e-mail' });
    const name = within(form).getByLabelText('Name');
    await userEvent.clear(name);
    await userEvent.type(name, 'Root Operator');
    await userEvent.type(within(form).getByLabelText('Current password'), 'platform admin 99');
    await userEvent.click(within(form).getByRole('button', { name: 'Save' }));
    expect(await screen.findByText('Profile saved.')).toBeInTheDocument();
    const put = calls.find((c) => c.method === 'PUT');
    expect(put?.body).toEqual({ name: 'Root Operator', email: 'root@platform.test', current_password: 'platform admin 99' });
    expect(put?.authorization).toBe('Bearer access-1');
  });

  it('shows a wrong current password', async () => {
    setup({ 'PUT /api/auth/profile': () => apiError(403, 'forbidden', 'the current password is not correct') });
    renderApp('/profile');
    const form = await screen.findByRole('form', { name: 'Name and e-mail' });
    await userEvent.type(within(form).getByLabelText('Name'), 'x');
    await userEvent.type(within(form).getByLabelText('Current password'), 'wrong one 1');
    await userEvent.click(within(form).getByRole('button', { name: 'Save' }));
    expect(await within(form).findByRole('alert')).toHaveTextContent('the current password is not correct');
  });

  it('changes the password and says how many sessions were signed out', async () => {
    const { calls } = setup({ 'POST /api/auth/password': () => json({ sessions_revoked: 2 }) });
    renderApp('/profile');
    const form = await screen.findByRole('form', { name: 'Change password' });
    await userEvent.type(within(form).getByLabelText('Current password'), 'platform admin 99');
    await userEvent.type(within(form).getByLabelText('New password'), 'brand new pass 77');
    await userEvent.type(within(form).getByLabelText('Repeat the new password'), 'brand new pass 7');
    await userEvent.click(within(form).getByRole('button', { name: 'Change password' }));
    expect(await within(form).findByText('The two passwords differ.')).toBeInTheDocument();
    expect(calls.some((c) => c.method === 'POST')).toBe(false);
    await userEvent.type(within(form).getByLabelText('Repeat the new password'), '7');
    await userEvent.click(within(form).getByRole('button', { name: 'Change password' }));
    expect(await screen.findByText('Password changed. 2 other sessions were signed out.')).toBeInTheDocument();
    await waitFor(() => expect(calls.find((c) => c.method === 'POST')?.body).toEqual({ current_password: 'platform admin 99', new_password: 'brand new pass 77' }));
  });

  it('names the field the server rejects', async () => {
    setup({ 'POST /api/auth/password': () => apiError(422, 'validation_failed', 'new_password must contain at least one letter and one digit', 'new_password') });
    renderApp('/profile');
    const form = await screen.findByRole('form', { name: 'Change password' });
    await userEvent.type(within(form).getByLabelText('Current password'), 'platform admin 99');
    await userEvent.type(within(form).getByLabelText('New password'), 'abcdefghij1');
    await userEvent.type(within(form).getByLabelText('Repeat the new password'), 'abcdefghij1');
    await userEvent.click(within(form).getByRole('button', { name: 'Change password' }));
    expect(await within(form).findByText('new_password must contain at least one letter and one digit')).toBeInTheDocument();
  });
});
