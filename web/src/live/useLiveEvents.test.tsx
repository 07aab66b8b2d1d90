import { QueryClientProvider, type QueryClient } from '@tanstack/react-query';
import { act, render, screen, waitFor } from '@testing-library/react';
import { accountsKey, inventoryKey, jobActionsKey, jobKey, jobsKey, scanKey } from '../api/keys';
import { createQueryClient } from '../api/queryClient';
import type { Job, JobList, ScanStatus } from '../api/types';
import { storeTokens } from '../auth/session';
import { ToastProvider } from '../components';
import { json, makeScan, mockApi, tokens } from '../test/api';
import { watchJob } from './jobAnnouncements';
import { useLiveConnected, useLiveEvents } from './useLiveEvents';

/** Stand-in for the browser's EventSource that the test drives by hand. */
class FakeEventSource {
  static instances: FakeEventSource[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((message: MessageEvent<string>) => void) | null = null;
  onerror: (() => void) | null = null;
  closed = false;

  constructor(readonly url: string) {
    FakeEventSource.instances.push(this);
  }

  close() {
    this.closed = true;
  }

  open() {
    act(() => this.onopen?.());
  }

  emit(type: string, data: unknown) {
    act(() => this.onmessage?.(new MessageEvent('message', { data: JSON.stringify({ type, ts: '2024-05-01T10:00:00Z', data }) })));
  }

  fail() {
    act(() => this.onerror?.());
  }

  static latest(): FakeEventSource {
    const source = FakeEventSource.instances.at(-1);
    if (!source) throw new Error('no EventSource was opened');
    return source;
  }
}

/** A JWT-shaped token (only the payload's `exp` is read client-side); valid until 2100 by default. */
function jwt(name: string, exp = 4_102_444_800): string {
  const payload = btoa(JSON.stringify({ sub: name, exp })).replace(/=+$/, '');
  return `header.${payload}.signature`;
}

function Harness() {
  useLiveEvents();
  return <p>{useLiveConnected() ? 'live' : 'polling'}</p>;
}

function setup(): QueryClient {
  vi.stubGlobal('EventSource', FakeEventSource);
  FakeEventSource.instances = [];
  storeTokens({ ...tokens, access_token: jwt('first') });
  const queryClient = createQueryClient();
  render(
    <QueryClientProvider client={queryClient}>
      <ToastProvider>
        <Harness />
      </ToastProvider>
    </QueryClientProvider>,
  );
  return queryClient;
}

describe('useLiveEvents', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('connects with the access token and reports the stream as live once open', () => {
    setup();
    const source = FakeEventSource.latest();
    expect(source.url).toBe(`/api/events?access_token=${jwt('first')}`);
    expect(screen.getByText('polling')).toBeInTheDocument();
    source.open();
    expect(screen.getByText('live')).toBeInTheDocument();
  });

  it('writes scan progress into the cache and invalidates on status and inventory events', () => {
    const queryClient = setup();
    const source = FakeEventSource.latest();
    source.open();
    queryClient.setQueryData<ScanStatus>(scanKey('acc-1'), makeScan({ status: 'scanning', phase: 'queued', progress: 0 }));
    queryClient.setQueryData(accountsKey, []);
    queryClient.setQueryData([...inventoryKey, 'clusters'], { items: [], total_monthly_run_rate: 0 });

    source.emit('scan.progress', { account_id: 'acc-1', phase: 'clusters', progress: 40 });
    expect(queryClient.getQueryData<ScanStatus>(scanKey('acc-1'))).toMatchObject({ phase: 'clusters', progress: 40, status: 'scanning' });
    expect(queryClient.getQueryState([...inventoryKey, 'clusters'])?.isInvalidated).toBe(false);

    source.emit('account.status', { account_id: 'acc-1', status: 'active' });
    expect(queryClient.getQueryState(accountsKey)?.isInvalidated).toBe(true);
    expect(queryClient.getQueryState(scanKey('acc-1'))?.isInvalidated).toBe(true);

    source.emit('inventory.changed', { instances: { new: 1 } });
    expect(queryClient.getQueryState([...inventoryKey, 'clusters'])?.isInvalidated).toBe(true);
  });

  it('shows a toast for a spot interruption notice', () => {
    setup();
    const source = FakeEventSource.latest();
    source.open();
    source.emit('spot.interruption', { account_id: 'acc-1', instance_id: 'i-0abc', instance_type: 'm5.large', az: 'us-east-1a' });
    expect(screen.getByText('Spot interruption notice: i-0abc (m5.large in us-east-1a) will be reclaimed in about two minutes.')).toBeInTheDocument();
  });

  it('writes job progress and actions into the cache and toasts when a watched job finishes', () => {
    const queryClient = setup();
    const source = FakeEventSource.latest();
    source.open();
    const job: Job = { id: 'job-9', kind: 'optimize', target_id: 'c-1', status: 'queued', progress: 0, dry_run: false, safe_mode: false, created_at: '2024-05-01T10:00:00Z' };
    queryClient.setQueryData(jobKey('job-9'), job);
    queryClient.setQueryData<JobList>([...jobsKey, 'list'], { items: [job] });
    queryClient.setQueryData([...inventoryKey, 'clusters'], { items: [], total_monthly_run_rate: 0 });
    watchJob('job-9');

    source.emit('job.progress', { job_id: 'job-9', kind: 'optimize', status: 'running', progress: 40, message: 'plan ready' });
    expect(queryClient.getQueryData(jobKey('job-9'))).toMatchObject({ status: 'running', progress: 40, message: 'plan ready' });
    expect(queryClient.getQueryData<JobList>([...jobsKey, 'list'])?.items[0]).toMatchObject({ status: 'running', progress: 40 });
    // An older value arriving late does not move the bar backwards.
    source.emit('job.progress', { job_id: 'job-9', kind: 'optimize', status: 'running', progress: 5 });
    expect(queryClient.getQueryData<Job>(jobKey('job-9'))?.progress).toBe(40);

    source.emit('job.action', { job_id: 'job-9', cluster_id: 'c-1', index: 0, action: { index: 0, status: 'applied' } });
    expect(queryClient.getQueryData(jobActionsKey('job-9'))).toEqual({ 0: { index: 0, status: 'applied' } });
    expect(queryClient.getQueryState([...inventoryKey, 'clusters'])?.isInvalidated).toBe(false);

    source.emit('job.progress', { job_id: 'job-9', kind: 'optimize', status: 'succeeded', progress: 100, message: '1 actions executed, $80.00/month saved' });
    expect(queryClient.getQueryState(jobKey('job-9'))?.isInvalidated).toBe(true);
    expect(queryClient.getQueryState([...inventoryKey, 'clusters'])?.isInvalidated).toBe(true);
    expect(screen.getByText('Optimization finished: 1 actions executed, $80.00/month saved')).toBeInTheDocument();
    // Announced once, however many times the end is seen.
    source.emit('job.progress', { job_id: 'job-9', kind: 'optimize', status: 'succeeded', progress: 100, message: '1 actions executed, $80.00/month saved' });
    expect(screen.getAllByText('Optimization finished: 1 actions executed, $80.00/month saved')).toHaveLength(1);
  });

  it('falls back to polling when the stream drops and reconnects with backoff', () => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    setup();
    const first = FakeEventSource.latest();
    first.open();

    first.fail();
    expect(first.closed).toBe(true);
    expect(screen.getByText('polling')).toBeInTheDocument();
    act(() => vi.advanceTimersByTime(999));
    expect(FakeEventSource.instances).toHaveLength(1);
    act(() => vi.advanceTimersByTime(1));
    expect(FakeEventSource.instances).toHaveLength(2);

    // A second failure in a row waits twice as long.
    FakeEventSource.latest().fail();
    act(() => vi.advanceTimersByTime(1999));
    expect(FakeEventSource.instances).toHaveLength(2);
    act(() => vi.advanceTimersByTime(1));
    expect(FakeEventSource.instances).toHaveLength(3);
    FakeEventSource.latest().open();
    expect(screen.getByText('live')).toBeInTheDocument();
  });

  it('reconnects with the new token when the session refreshes', () => {
    setup();
    const first = FakeEventSource.latest();
    first.open();
    act(() => storeTokens({ ...tokens, access_token: jwt('second') }));
    expect(first.closed).toBe(true);
    expect(FakeEventSource.latest().url).toBe(`/api/events?access_token=${jwt('second')}`);
  });

  it('refreshes an expired token before connecting', async () => {
    vi.stubGlobal('EventSource', FakeEventSource);
    FakeEventSource.instances = [];
    storeTokens({ ...tokens, access_token: jwt('stale', 1) });
    const { calls } = mockApi({ 'POST /api/auth/refresh': () => json({ ...tokens, access_token: jwt('fresh') }) });
    render(
      <QueryClientProvider client={createQueryClient()}>
        <ToastProvider>
          <Harness />
        </ToastProvider>
      </QueryClientProvider>,
    );
    await waitFor(() => expect(FakeEventSource.instances).toHaveLength(1));
    expect(calls.map((call) => call.url.pathname)).toEqual(['/api/auth/refresh']);
    expect(FakeEventSource.latest().url).toBe(`/api/events?access_token=${jwt('fresh')}`);
  });

  it('ignores malformed messages', () => {
    const queryClient = setup();
    const source = FakeEventSource.latest();
    source.open();
    queryClient.setQueryData(accountsKey, []);
    act(() => source.onmessage?.(new MessageEvent('message', { data: 'not json' })));
    expect(queryClient.getQueryState(accountsKey)?.isInvalidated).toBe(false);
  });
});
