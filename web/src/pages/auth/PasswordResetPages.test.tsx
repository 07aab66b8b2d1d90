import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { getAccessToken } from '../../auth/session';
import { apiError, json, makeMe, mockApi, renderApp, tokens } from '../../test/api';

afterEach(() => localStorage.clear());

describe('Password reset and owner invite pages', () => {
  it('links from sign-in and asks for a reset link without revealing accounts', async () => {
    const { calls } = mockApi({ 'POST /api/auth/password-reset': () => new Response(null, { status: 202 }) });
    renderApp('/login');
    await userEvent.click(screen.getByRole('link', { name: 'Forgot your password?' }));
    await userEvent.type(await screen.findByLabelText('Email'), 'someone@acme.test');
    await userEvent.click(screen.getByRole('button', { name: 'Send reset link' }));
    expect(await screen.findByText('Check your inbox')).toBeInTheDocument();
    expect(calls[0]?.body).toEqual({ email: 'someone@acme.test' });
  });

  it('sets a new password from the link and returns to sign-in', async () => {
    const { calls } = mockApi({ 'POST /api/auth/password-reset/confirm': () => new Response(null, { status: 204 }) });
    renderApp('/reset-password?token=tok-123');
    await userEvent.type(screen.getByLabelText('New password'), 'a fine password 9');
    await userEvent.click(screen.getByRole('button', { name: 'Save the new password' }));
    expect(await screen.findByText(/Your password was changed and every session was signed out/)).toBeInTheDocument();
    expect(calls[0]?.body).toEqual({ token: 'tok-123', password: 'a fine password 9' });
  });

  it('explains an expired reset link', async () => {
    mockApi({ 'POST /api/auth/password-reset/confirm': () => apiError(422, 'validation_failed', 'this reset link has expired', 'token') });
    renderApp('/reset-password?token=old');
    await userEvent.type(screen.getByLabelText('New password'), 'a fine password 9');
    await userEvent.click(screen.getByRole('button', { name: 'Save the new password' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('this reset link has expired');
  });

  it('accepts an owner invite and signs in', async () => {
    const { calls } = mockApi({
      'POST /api/auth/owner-invites/accept': () => json(tokens, { status: 201 }),
      'GET /api/auth/me': () => json(makeMe('owner')),
      'GET /api/accounts': () => json({ items: [] }),
    });
    renderApp('/accept-owner-invite?token=inv-1');
    expect(screen.getByText('Your organization is ready')).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText('Password'), 'a fine password 9');
    await userEvent.click(screen.getByRole('button', { name: 'Accept and sign in' }));
    await waitFor(() => expect(getAccessToken()).toBe('access-1'));
    expect(calls[0]?.body).toEqual({ token: 'inv-1', password: 'a fine password 9' });
  });
});
