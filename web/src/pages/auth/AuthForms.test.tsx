import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { apiError, json, makeMe, mockApi, placeholderAccount, renderApp, tokens } from '../../test/api';

async function fillSignup(password = 'correct horse battery 9') {
  const user = userEvent.setup();
  await user.type(screen.getByLabelText('Organization name'), 'Acme Corp');
  await user.type(screen.getByLabelText('Work email'), 'admin@acme.test');
  await user.type(screen.getByLabelText('Password'), password);
  await user.click(screen.getByRole('button', { name: 'Create account' }));
}

describe('Sign up', () => {
  it('shows the server validation message under the field it names', async () => {
    const { calls } = mockApi({
      'POST /api/auth/signup': () => apiError(400, 'validation_failed', 'Password appears in a breach corpus.', 'password'),
    });
    renderApp('/signup');
    await fillSignup();

    const password = screen.getByLabelText('Password');
    expect(await screen.findByText('Password appears in a breach corpus.')).toBeInTheDocument();
    expect(password).toHaveAttribute('aria-invalid', 'true');
    expect(password).toHaveAccessibleDescription(expect.stringContaining('Password appears in a breach corpus.'));
    expect(screen.getByLabelText('Work email')).toHaveAttribute('aria-invalid', 'false');
    expect(calls[0]?.body).toEqual({ org_name: 'Acme Corp', email: 'admin@acme.test', password: 'correct horse battery 9' });
  });

  it('maps a conflict on email to the email field', async () => {
    mockApi({ 'POST /api/auth/signup': () => apiError(409, 'conflict', 'An account with this email already exists.', 'email') });
    renderApp('/signup');
    await fillSignup();

    expect(await screen.findByText('An account with this email already exists.')).toBeInTheDocument();
    expect(screen.getByLabelText('Work email')).toHaveAttribute('aria-invalid', 'true');
  });

  it('explains the password policy and enforces it before calling the API', async () => {
    const { fetchMock } = mockApi({});
    renderApp('/signup');
    expect(screen.getByLabelText('Password')).toHaveAccessibleDescription(expect.stringContaining('At least 10 characters'));
    await fillSignup('short');
    expect(await screen.findByText('Use at least 10 characters.')).toBeInTheDocument();

    const user = userEvent.setup();
    await user.clear(screen.getByLabelText('Password'));
    await user.type(screen.getByLabelText('Password'), 'only letters here');
    await user.click(screen.getByRole('button', { name: 'Create account' }));
    expect(await screen.findByText('Include at least one letter and one digit.')).toBeInTheDocument();
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('enters onboarding after a successful signup', async () => {
    mockApi({
      'POST /api/auth/signup': () => json(tokens, { status: 201 }),
      'GET /api/auth/me': () => json(makeMe('owner', { route: 'onboarding', onboarding_dismissed: false })),
    });
    renderApp('/signup');
    await fillSignup();

    expect(await screen.findByText(/Welcome to Spot Optimizer/)).toBeInTheDocument();
    expect(localStorage.getItem('spot.refresh_token')).toBe('refresh-1');
  });
});

describe('Sign in', () => {
  async function submitLogin() {
    const user = userEvent.setup();
    await user.type(screen.getByLabelText('Email'), 'admin@acme.test');
    await user.type(screen.getByLabelText('Password'), 'wrong password');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
  }

  it('shows bad credentials as a form-level alert without refreshing tokens', async () => {
    const { calls } = mockApi({ 'POST /api/auth/token': () => apiError(401, 'unauthorized', 'Invalid email or password.') });
    renderApp('/login');
    await submitLogin();

    expect(await screen.findByRole('alert')).toHaveTextContent('Invalid email or password.');
    expect(calls.map((call) => call.url.pathname)).toEqual(['/api/auth/token']);
  });

  it('tells the user how long to wait when rate limited', async () => {
    mockApi({
      'POST /api/auth/token': () => apiError(429, 'rate_limited', 'Too many sign-in attempts.', undefined, { 'Retry-After': '30' }),
    });
    renderApp('/login');
    await submitLogin();

    expect(await screen.findByRole('alert')).toHaveTextContent('Too many sign-in attempts. Try again in 30 s.');
  });

  it('routes through the gateway to the dashboard when onboarding is done', async () => {
    mockApi({
      'POST /api/auth/token': () => json(tokens),
      'GET /api/auth/me': () => json(makeMe('admin')),
      'GET /api/accounts': () => json({ items: [placeholderAccount] }),
    });
    renderApp('/login');
    await submitLogin();

    await waitFor(() => expect(screen.getByRole('heading', { name: 'Dashboard' })).toBeInTheDocument());
    expect(await screen.findByText('No cloud account connected yet')).toBeInTheDocument();
  });
});
