import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { apiError, json, makeAccount, makeMe, mockApi, renderApp, signIn } from '../../test/api';
import { estimate, makeTemplate } from './fixtures';

const groups = {
  account_id: 'acc-1',
  account_name: 'Production',
  region: 'us-east-1',
  items: [
    { id: 'sg-0aaaaaaaaaaaaaaaa', name: 'default', description: 'default VPC security group', vpc_id: 'vpc-01', cluster: null },
    { id: 'sg-0bbbbbbbbbbbbbbbb', name: 'prod-nodes', description: 'Worker nodes of prod', vpc_id: 'vpc-01', cluster: 'prod' },
  ],
};

function setup(handlers: Parameters<typeof mockApi>[0] = {}) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe('owner')),
    'GET /api/templates': () => json({ items: [makeTemplate()] }),
    'GET /api/templates/t-1': () => json(makeTemplate({ spec: { ...makeTemplate().spec, security_groups: ['sg-0cccccccccccccccc'] } })),
    'POST /api/templates/estimate': () => json(estimate),
    'GET /api/accounts': () => json({ items: [makeAccount({ id: 'acc-1', name: 'Production' })] }),
    'GET /api/templates/security-groups': () => json(groups),
    'PATCH /api/templates/t-1': async (request) => json({ ...makeTemplate(), ...((await request.json()) as object) }),
    ...handlers,
  });
}

describe('Template security groups', () => {
  it('lists the linked account’s groups and saves the ticked ids', async () => {
    const { calls } = setup();
    const user = userEvent.setup();
    renderApp('/templates/t-1');
    await screen.findByRole('heading', { name: 'Edit general-spot', level: 1 });
    await user.click(within(screen.getByRole('list', { name: 'Template steps' })).getByRole('button', { name: /Node settings/ }));
    const picker = await screen.findByRole('group', { name: 'Security groups' });
    const nodes = await within(picker).findByRole('checkbox', { name: /prod-nodes · sg-0bbbbbbbbbbbbbbbb · cluster prod/ });
    expect(within(picker).getByText(/Read from Production \(us-east-1\)/)).toBeInTheDocument();
    // The id saved earlier is not in this account: still shown, and can be removed.
    const kept = within(picker).getByRole('checkbox', { name: 'sg-0cccccccccccccccc (not in this account)' });
    expect(kept).toBeChecked();
    await user.click(nodes);
    await user.click(kept);
    await user.click(screen.getByRole('button', { name: 'Save changes' }));
    await waitFor(() => expect(calls.some((c) => c.method === 'PATCH')).toBe(true));
    const patch = calls.find((c) => c.method === 'PATCH');
    expect((patch?.body as { spec: { security_groups: string[] } }).spec.security_groups).toEqual(['sg-0bbbbbbbbbbbbbbbb']);
  });

  it('falls back to typed ids when the account cannot be read', async () => {
    setup({
      'GET /api/templates/security-groups': () => apiError(409, 'conflict', 'no cloud account is linked: link one to read its security groups'),
    });
    const user = userEvent.setup();
    renderApp('/templates/t-1');
    await screen.findByRole('heading', { name: 'Edit general-spot', level: 1 });
    await user.click(within(screen.getByRole('list', { name: 'Template steps' })).getByRole('button', { name: /Node settings/ }));
    const input = await screen.findByRole('textbox', { name: 'Security groups' });
    expect(input).toHaveAccessibleDescription(expect.stringContaining('no cloud account is linked'));
    await user.clear(input);
    await user.type(input, 'sg-xyz');
    await user.click(screen.getByRole('button', { name: 'Save changes' }));
    expect(await screen.findByText(/sg-xyz is not a security group id/)).toBeInTheDocument();
  });
});
