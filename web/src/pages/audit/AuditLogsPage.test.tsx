import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { AuditEntry } from '../../api/types';
import { json, makeMe, mockApi, renderApp, signIn } from '../../test/api';

function entry(id: string, overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    id,
    seq: Number(id.slice(1)),
    timestamp: '2024-05-01T10:00:00.000Z',
    actor: { kind: 'user', user_id: 'u-self', email: 'me@acme.test' },
    action: 'invite.create',
    resource_type: 'invite',
    resource_id: `res-${id}`,
    outcome: 'success',
    source_ip: '10.0.0.1',
    user_agent: 'vitest',
    status_code: 200,
    request_id: `req-${id}`,
    diff: { before: null, after: null },
    prev_hash: `prev-${id}`,
    hash: `hash-${id}`,
    ...overrides,
  };
}

function setup() {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe('viewer')),
    'GET /api/audit-logs': (_request, url) =>
      url.searchParams.get('cursor') === 'cursor-2'
        ? json({ items: [entry('e3', { action: 'auth.signup', outcome: 'denied', actor: { kind: 'system', component: 'discovery' } })], next_cursor: null })
        : json({
            items: [
              entry('e1', {
                action: 'member.update',
                diff: { before: { role: 'viewer', email: 'a@acme.test' }, after: { role: 'admin', email: 'a@acme.test' } },
              }),
              entry('e2', { outcome: 'failed' }),
            ],
            next_cursor: 'cursor-2',
          }),
    'GET /api/audit-logs/verify': () => json({ ok: false, checked: 42, first_broken: { id: 'e2', seq: 2, timestamp: '2024-05-01T10:00:00.000Z', reason: 'hash mismatch' } }),
  });
}

describe('Audit Logs', () => {
  it('renders entries and appends the next page on "Load more"', async () => {
    const { calls } = setup();
    const user = userEvent.setup();
    renderApp('/audit-logs');

    const table = await screen.findByRole('table', { name: 'Audit log entries' });
    expect(within(table).getAllByRole('row')).toHaveLength(3);
    expect(within(table).getByText('member.update')).toBeInTheDocument();
    expect(within(table).getByText('failed')).toBeInTheDocument();

    await user.click(screen.getByRole('button', { name: 'Load more' }));

    expect(await within(table).findByText('auth.signup')).toBeInTheDocument();
    expect(within(table).getAllByRole('row')).toHaveLength(4);
    expect(within(table).getByText('System · discovery')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Load more' })).not.toBeInTheDocument();

    const pages = calls.filter((call) => call.url.pathname === '/api/audit-logs');
    expect(pages).toHaveLength(2);
    expect(pages[0]?.url.searchParams.get('cursor')).toBeNull();
    expect(pages[0]?.url.searchParams.get('from')).not.toBeNull();
    expect(pages[1]?.url.searchParams.get('cursor')).toBe('cursor-2');
    expect(pages.every((call) => call.authorization === 'Bearer access-1')).toBe(true);
  });

  it('sends filters as query parameters when applied', async () => {
    const { calls } = setup();
    const user = userEvent.setup();
    renderApp('/audit-logs');
    await screen.findByRole('table', { name: 'Audit log entries' });

    await user.selectOptions(screen.getByLabelText('Outcome'), 'denied');
    await user.type(screen.getByLabelText('Action'), 'invite.create');
    await user.type(screen.getByLabelText('Actor'), 'me@acme.test');
    await user.selectOptions(screen.getByLabelText('Time range'), 'all');
    await user.click(screen.getByRole('button', { name: 'Apply' }));

    await vi.waitFor(() => expect(calls.filter((call) => call.url.pathname === '/api/audit-logs')).toHaveLength(2));
    const params = calls.filter((call) => call.url.pathname === '/api/audit-logs')[1]?.url.searchParams;
    expect(params?.get('outcome')).toBe('denied');
    expect(params?.get('action')).toBe('invite.create');
    expect(params?.get('actor')).toBe('me@acme.test');
    expect(params?.get('from')).toBeNull();
  });

  it('opens a drawer with the before/after diff of an entry', async () => {
    setup();
    const user = userEvent.setup();
    renderApp('/audit-logs');

    await user.click(await screen.findByText('member.update'));

    const drawer = screen.getByRole('dialog', { name: 'member.update' });
    const diff = within(drawer).getByRole('table', { name: 'Before and after values' });
    const roleRow = within(diff).getByText('role').closest('tr') as HTMLElement;
    expect(roleRow).toHaveClass('diff-row--changed');
    expect(within(roleRow).getByText('viewer')).toBeInTheDocument();
    expect(within(roleRow).getByText('admin')).toBeInTheDocument();
    expect(within(diff).getByText('email').closest('tr')).toHaveClass('diff-row--unchanged');
    expect(within(drawer).getByText('hash-e1')).toBeInTheDocument();
  });

  it('reports where the hash chain breaks', async () => {
    setup();
    const user = userEvent.setup();
    renderApp('/audit-logs');
    await screen.findByRole('table', { name: 'Audit log entries' });

    await user.click(screen.getByRole('button', { name: 'Verify chain' }));

    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Audit chain broken');
    expect(alert).toHaveTextContent('42 entries checked');
    expect(alert).toHaveTextContent('First break at entry #2');
    expect(alert).toHaveTextContent('hash mismatch');
  });
});
