import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { json, makeMe, mockApi, renderApp, signIn } from '../../../test/api';
import type { LogLine } from '../console/api';
import { MAX_LINES, mergeLines } from './LiveLogPanel';

function line(seq: number, overrides: Partial<LogLine> = {}): LogLine {
  return { seq, ts: '2026-11-29T10:00:00.123Z', level: 'INFO', target: 't', message: `line ${seq}`, fields: {}, ...overrides };
}

/** A stand-in for the browser's EventSource that tests can push messages through. */
class FakeEventSource {
  static instances: FakeEventSource[] = [];
  /** The log streams opened (the app shell also opens its own event stream). */
  static logStreams(): FakeEventSource[] {
    return FakeEventSource.instances.filter((s) => s.url.startsWith('/api/admin/logs/stream'));
  }
  onopen: (() => void) | null = null;
  onmessage: ((m: MessageEvent<string>) => void) | null = null;
  onerror: (() => void) | null = null;
  closed = false;
  constructor(public url: string) {
    FakeEventSource.instances.push(this);
  }
  close() {
    this.closed = true;
  }
  emit(data: unknown) {
    this.onmessage?.(new MessageEvent('message', { data: JSON.stringify(data) }));
  }
}

const superAdmin = makeMe('owner', { platform_role: 'super_admin' });
const health = {
  status: 'ok',
  database: 'ok',
  safe_mode: false,
  risk_model: { id: 'shipped:risk-v1', name: 'risk-v1', runtime: 'onnx:tract', degraded: false },
  job_queue: { worker_alive: true, worker_restarts: 0, kinds: [] },
  actors: [],
};

function setup(changes: unknown[] = []) {
  signIn();
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
  return mockApi({
    'GET /api/auth/me': () => json(superAdmin),
    'GET /api/admin/health': () => json(health),
    'GET /api/admin/logs': (_r, url) =>
      json({
        capacity: 2000,
        items: url.searchParams.get('level') === 'error' ? [line(5, { level: 'ERROR', message: 'only errors' })] : [line(1), line(2, { level: 'WARN', component: 'CORE-API', fields: { status: '503' } })],
      }),
    'GET /api/admin/logs/changes': () => json({ items: changes }),
  });
}

describe('Live log panel', () => {
  it('merges lines by sequence and keeps the newest', () => {
    const many = Array.from({ length: MAX_LINES + 10 }, (_, i) => line(i));
    const merged = mergeLines([line(3), line(1)], many);
    expect(merged).toHaveLength(MAX_LINES);
    expect(merged.at(-1)?.seq).toBe(MAX_LINES + 9);
    expect(new Set(merged.map((l) => l.seq)).size).toBe(MAX_LINES);
  });

  it('shows the recent lines, then streams new ones live', async () => {
    setup();
    renderApp('/admin/health');
    const lines = await screen.findByRole('list', { name: 'Log lines' });
    expect(await within(lines).findByText('line 1')).toBeInTheDocument();
    expect(within(lines).getByText('status=503')).toBeInTheDocument();
    const stream = FakeEventSource.logStreams().at(-1);
    if (stream === undefined) throw new Error('no log stream opened');
    expect(stream.url).toContain('/api/admin/logs/stream?level=info&access_token=');
    act(() => stream.onopen?.());
    expect(screen.getByText('Live')).toBeInTheDocument();
    act(() => stream.emit(line(3, { level: 'ERROR', message: 'database unreachable Bearer [REDACTED]' })));
    expect(await within(lines).findByText('database unreachable Bearer [REDACTED]')).toBeInTheDocument();
    // Paused: nothing new is added.
    await userEvent.click(screen.getByRole('button', { name: 'Pause' }));
    act(() => stream.emit(line(4, { message: 'while paused' })));
    expect(within(lines).queryByText('while paused')).not.toBeInTheDocument();
    expect(screen.getByText('Paused')).toBeInTheDocument();
  });

  it('filters by level on the server and on the stream', async () => {
    const { calls } = setup();
    renderApp('/admin/health');
    await screen.findByRole('list', { name: 'Log lines' });
    await userEvent.selectOptions(screen.getByLabelText('Level'), 'error');
    await waitFor(() => expect(calls.some((c) => c.url.pathname === '/api/admin/logs' && c.url.searchParams.get('level') === 'error')).toBe(true));
    expect(await screen.findByText('only errors')).toBeInTheDocument();
    expect(screen.queryByText('line 1')).not.toBeInTheDocument();
    const streams = FakeEventSource.logStreams();
    expect(streams.at(-1)?.url).toContain('level=error');
    expect(streams[0]?.url).toContain('level=info');
    expect(streams[0]?.closed).toBe(true);
  });

  it('shows component state changes with the lines around them', async () => {
    setup([
      {
        id: 9,
        ts: '2026-11-29T09:00:00Z',
        component: 'database',
        from: 'ok',
        to: 'unreachable',
        before: [line(7, { message: 'pool timed out' })],
        after: [line(8, { level: 'ERROR', message: 'request failed' })],
      },
    ]);
    renderApp('/admin/health');
    const changes = await screen.findByRole('list', { name: 'State changes' });
    expect(within(changes).getByText('database')).toBeInTheDocument();
    expect(within(changes).getByText('unreachable')).toBeInTheDocument();
    await userEvent.click(within(changes).getByRole('button', { name: 'Show log lines (2)' }));
    expect(within(screen.getByRole('list', { name: 'Lines before the database change' })).getByText('pool timed out')).toBeInTheDocument();
    expect(within(screen.getByRole('list', { name: 'Lines after the database change' })).getByText('request failed')).toBeInTheDocument();
  });
});
