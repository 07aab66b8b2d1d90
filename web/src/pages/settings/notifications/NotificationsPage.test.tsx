import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Role } from '../../../api/types';
import { apiError, json, makeMe, mockApi, renderApp, signIn } from '../../../test/api';
import { describeAttempt, parseRecipients, statusTone } from './NotificationsPage';

function settings(overrides: Record<string, unknown> = {}) {
  return {
    webhook_url: 'https://hooks.example.com/services/T/B/secret',
    webhook_configured: true,
    email_recipients: ['finops@acme.test'],
    email_configured: false,
    pre_sleep_enabled: true,
    weekly_report_enabled: true,
    updated_by: 'u-owner',
    updated_at: '2026-11-28T10:00:00Z',
    ...overrides,
  };
}

const delivered = {
  id: 'n-1',
  kind: 'test',
  subject: 'Spot Optimizer test notification',
  status: 'delivered',
  summary: 'webhook: delivered (HTTP 200, attempt 2)',
  created_by: 'u-self',
  created_at: '2026-11-28T10:00:00Z',
  finished_at: '2026-11-28T10:00:02Z',
  attempts: [
    { channel: 'webhook', target: 'https://hooks.example.com/…', attempt: 1, outcome: 'retry', status_code: 503, error: 'HTTP 503', duration_ms: 41, at: '2026-11-28T10:00:00Z' },
    { channel: 'webhook', target: 'https://hooks.example.com/…', attempt: 2, outcome: 'success', status_code: 200, error: null, duration_ms: 12, at: '2026-11-28T10:00:01Z' },
  ],
};

function setup(role: Role, extra: Record<string, (request: Request) => Response | Promise<Response>> = {}) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe(role)),
    'GET /api/org/notifications': () => json(settings(role === 'viewer' ? { webhook_url: 'https://hooks.example.com/…' } : {})),
    'GET /api/org/notifications/deliveries': () => json({ items: [delivered] }),
    ...extra,
  });
}

describe('Notification settings', () => {
  it('says when e-mail is not configured and shows every delivery attempt', async () => {
    setup('owner');
    renderApp('/settings/notifications');
    expect(await screen.findByText(/E-mail is not configured on this server/)).toBeInTheDocument();
    expect(screen.getByLabelText('Webhook URL')).toHaveValue('https://hooks.example.com/services/T/B/secret');
    const attempts = await screen.findByRole('list', { name: 'Attempts for Spot Optimizer test notification' });
    const items = within(attempts).getAllByRole('listitem');
    expect(items.map((i) => i.textContent)).toEqual(['webhook #1 · retry · HTTP 503 · 41 ms', 'webhook #2 · success · HTTP 200 · 12 ms']);
  });

  it('shows a viewer the settings read-only, without save or test buttons', async () => {
    setup('viewer');
    renderApp('/settings/notifications');
    expect(await screen.findByLabelText('Webhook URL')).toBeDisabled();
    expect(screen.getByLabelText('Recipients')).toBeDisabled();
    expect(screen.queryByRole('button', { name: 'Save settings' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Send test notification' })).not.toBeInTheDocument();
  });

  it('saves the settings and puts a field error under the named field', async () => {
    let attempt = 0;
    const { calls } = setup('owner', {
      'PUT /api/org/notifications': () => {
        attempt += 1;
        return attempt === 1
          ? apiError(422, 'validation_failed', 'email_recipients[1] is not a valid e-mail address', 'email_recipients')
          : json(settings({ email_recipients: ['finops@acme.test', 'cto@acme.test'] }));
      },
    });
    const user = userEvent.setup();
    renderApp('/settings/notifications');
    const recipients = await screen.findByLabelText('Recipients');
    await user.type(recipients, '\nnope');
    // Unsaved changes: the test button waits for a save.
    expect(screen.getByRole('button', { name: 'Send test notification' })).toBeDisabled();
    await user.click(screen.getByRole('button', { name: 'Save settings' }));
    expect(await screen.findByText('email_recipients[1] is not a valid e-mail address')).toBeInTheDocument();
    expect(calls.find((c) => c.method === 'PUT')?.body).toEqual({
      webhook_url: 'https://hooks.example.com/services/T/B/secret',
      email_recipients: ['finops@acme.test', 'nope'],
      pre_sleep_enabled: true,
      weekly_report_enabled: true,
    });
    await user.clear(recipients);
    await user.type(recipients, 'finops@acme.test, cto@acme.test');
    await user.click(screen.getByRole('button', { name: 'Save settings' }));
    await waitFor(() => expect(screen.queryByText(/is not a valid e-mail address/)).not.toBeInTheDocument());
    await waitFor(() => expect(screen.getByRole('button', { name: 'Send test notification' })).toBeEnabled());
  });

  it('sends a test notification', async () => {
    const { calls } = setup('admin', {
      'POST /api/org/notifications/test': () => json({ ...delivered, id: 'n-2', status: 'pending', attempts: [] }, { status: 202 }),
    });
    const user = userEvent.setup();
    renderApp('/settings/notifications');
    await user.click(await screen.findByRole('button', { name: 'Send test notification' }));
    expect(await screen.findByText(/Test notification queued/)).toBeInTheDocument();
    expect(calls.filter((c) => c.method === 'POST' && c.url.pathname === '/api/org/notifications/test')).toHaveLength(1);
  });
});

describe('notification helpers', () => {
  it('parses recipients from lines and commas', () => {
    expect(parseRecipients(' a@x.io,\nb@x.io ;c@x.io\n\n')).toEqual(['a@x.io', 'b@x.io', 'c@x.io']);
  });

  it('describes failures with their error and tones statuses', () => {
    expect(
      describeAttempt({ channel: 'email', target: 'a@x.io', attempt: 3, outcome: 'failed', status_code: null, error: 'connection refused', duration_ms: 5, at: '' }),
    ).toBe('email #3 · failed · connection refused · 5 ms');
    expect(statusTone('delivered')).toBe('success');
    expect(statusTone('failed')).toBe('danger');
    expect(statusTone('skipped')).toBe('neutral');
  });
});
