import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Role } from '../../../api/types';
import { apiError, json, makeAccount, makeMe, mockApi, placeholderAccount, renderApp, signIn } from '../../../test/api';

const production = makeAccount();
const lab = makeAccount({
  id: 'acc-2',
  name: 'Lab',
  aws_account_id_masked: '9876-****-****',
  method: 'keys',
  status: 'error',
  status_message: 'Access denied: the access key was deactivated.',
});

function setup(role: Role, accounts = [placeholderAccount, production, lab]) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe(role)),
    'GET /api/accounts': () => json({ items: accounts }),
    'PATCH /api/accounts/acc-1': async (request) => json({ ...production, ...((await request.json()) as object) }),
    'POST /api/accounts/acc-1/resync': () => json({ ...production, status: 'scanning' }),
    'DELETE /api/accounts/acc-1': () => new Response(null, { status: 204 }),
  });
}

describe('Cloud integrations', () => {
  it('shows a viewer every linked account without mutating controls', async () => {
    setup('viewer');
    renderApp('/settings/cloud-integrations');

    const card = await screen.findByRole('article', { name: 'Production' });
    expect(within(card).getByText('1234-****-****')).toBeInTheDocument();
    expect(within(card).getByText('IAM role')).toBeInTheDocument();
    expect(within(card).getByText('Active')).toBeInTheDocument();
    const labCard = screen.getByRole('article', { name: 'Lab' });
    expect(within(labCard).getByText('Access keys')).toBeInTheDocument();
    expect(within(labCard).getByText('Access denied: the access key was deactivated.')).toBeInTheDocument();
    // The server's pending placeholder is not an account.
    expect(screen.queryByRole('article', { name: 'Pending account' })).not.toBeInTheDocument();

    expect(screen.queryByRole('button', { name: /Re-sync|Rename|Disconnect/ })).not.toBeInTheDocument();
    expect(screen.queryByRole('link', { name: /Connect/ })).not.toBeInTheDocument();
  });

  it('lets an admin rename, re-sync and disconnect an account', async () => {
    const { calls } = setup('admin');
    const user = userEvent.setup();
    renderApp('/settings/cloud-integrations');

    expect(await screen.findByRole('link', { name: 'Connect another account' })).toHaveAttribute('href', '/onboarding?add=1');
    const card = await screen.findByRole('article', { name: 'Production' });

    await user.click(within(card).getByRole('button', { name: 'Rename Production' }));
    const rename = screen.getByRole('dialog', { name: 'Rename account' });
    const name = within(rename).getByLabelText('Account name');
    expect(name).toHaveValue('Production');
    await user.clear(name);
    await user.type(name, 'Prod EU');
    await user.click(within(rename).getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    expect(calls.find((call) => call.method === 'PATCH')?.body).toEqual({ name: 'Prod EU' });

    await user.click(within(card).getByRole('button', { name: 'Re-sync' }));
    expect(await screen.findByText('Re-scanning Production.')).toBeInTheDocument();
    expect(calls.some((call) => call.method === 'POST' && call.url.pathname === '/api/accounts/acc-1/resync')).toBe(true);

    await user.click(within(card).getByRole('button', { name: 'Disconnect Production' }));
    const confirm = screen.getByRole('dialog', { name: 'Disconnect account?' });
    expect(calls.some((call) => call.method === 'DELETE')).toBe(false);
    await user.click(within(confirm).getByRole('button', { name: 'Disconnect' }));
    expect(await screen.findByText('Production was disconnected.')).toBeInTheDocument();
    expect(calls.some((call) => call.method === 'DELETE' && call.url.pathname === '/api/accounts/acc-1')).toBe(true);
  });

  it('offers to connect an account when only the placeholder exists', async () => {
    setup('owner', [placeholderAccount]);
    renderApp('/settings/cloud-integrations');

    expect(await screen.findByText('No cloud account connected yet')).toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'Connect AWS account' })).toHaveAttribute('href', '/onboarding?add=1');
  });

  it('reports a failed load with a retry', async () => {
    signIn();
    mockApi({
      'GET /api/auth/me': () => json(makeMe('owner')),
      'GET /api/accounts': () => apiError(403, 'forbidden', 'You do not have access to this organization.'),
    });
    renderApp('/settings/cloud-integrations');

    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not load cloud accounts');
    expect(within(alert).getByRole('button', { name: 'Try again' })).toBeInTheDocument();
  });
});
