import { act, fireEvent, screen, waitFor, within } from '@testing-library/react';
import type { Job, JobItem } from '../../api/types';
import { apiError, json, makeAccount, makeInstance, makeMe, mockApi, renderApp, signIn } from '../../test/api';

const volumes = {
  items: [
    { id: 'v-1', account_id: 'acc-1', volume_id: 'vol-0aaa', size_gib: 500, volume_type: 'gp3', last_attached_at: null, created_at: '2024-01-01T00:00:00Z', monthly_cost: 40 },
    { id: 'v-2', account_id: 'acc-1', volume_id: 'vol-0bbb', size_gib: 100, volume_type: 'gp2', last_attached_at: null, created_at: '2024-01-01T00:00:00Z', monthly_cost: 10 },
  ],
  total_monthly_cost: 50,
};

function makeJob(overrides: Partial<Job> = {}): Job {
  return {
    id: 'job-1',
    kind: 'cleanup_volumes',
    status: 'queued',
    progress: 0,
    dry_run: false,
    safe_mode: false,
    created_at: '2024-05-01T10:00:00Z',
    ...overrides,
  } as Job;
}

function makeItem(overrides: Partial<JobItem> = {}): JobItem {
  return {
    key: 'vol-0aaa',
    kind: 'volume',
    position: 0,
    resource_id: 'v-1',
    account_id: 'acc-1',
    status: 'queued',
    idempotency_key: 'so-job1-vol-0aaa',
    expected_monthly_saving: 40,
    monthly_saving: 0,
    ...overrides,
  } as JobItem;
}

function itemList(job: Job, items: JobItem[]) {
  const count = (s: string) => items.filter((i) => i.status === s).length;
  return { job, items, done: count('done'), failed: count('failed'), skipped: count('skipped'), pending: count('queued') + count('running'), monthly_saving: 0 };
}

/** Stand-in for the browser's EventSource, driven by the test. */
class FakeEventSource {
  static latest: FakeEventSource | null = null;
  onopen: (() => void) | null = null;
  onmessage: ((message: MessageEvent<string>) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeEventSource.latest = this;
  }
  close() {}
  emit(type: string, data: unknown) {
    act(() => this.onmessage?.(new MessageEvent('message', { data: JSON.stringify({ type, ts: '2024-05-01T10:00:00Z', data }) })));
  }
}

function baseHandlers(role: 'owner' | 'viewer') {
  return {
    'GET /api/auth/me': () => json(makeMe(role)),
    'GET /api/accounts': () => json({ items: [makeAccount()] }),
    'GET /api/instances/unregistered': () =>
      json({ items: [makeInstance({ id: 'u-1', instance_id: 'i-0stray', cluster_id: undefined, monthly_cost: 70.08 })], total_monthly_cost: 70.08 }),
    'GET /api/volumes/orphaned': () => json(volumes),
    'GET /api/snapshots/unused': () => json({ items: [], total_monthly_cost: 0 }),
  };
}

describe('Waste', () => {
  it('lists each kind of waste with its potential savings and the overall total', async () => {
    signIn();
    mockApi({
      ...baseHandlers('viewer'),
      'GET /api/volumes/orphaned': () =>
        json({
          items: [
            { id: 'v-1', account_id: 'acc-1', volume_id: 'vol-0aaa', size_gib: 500, volume_type: 'gp3', last_attached_at: null, created_at: '2024-01-01T00:00:00Z', monthly_cost: 40 },
          ],
          total_monthly_cost: 40,
        }),
    });
    renderApp('/waste');

    const volumesTable = await screen.findByRole('table', { name: 'Orphaned volumes' });
    const volume = within(volumesTable).getAllByRole('row')[1] as HTMLElement;
    expect(within(volume).getByText('vol-0aaa')).toBeInTheDocument();
    expect(within(volume).getByText('Production')).toBeInTheDocument();
    expect(within(volume).getByText('500 GiB')).toBeInTheDocument();

    expect(await screen.findByRole('table', { name: 'Unregistered instances' })).toHaveTextContent('i-0stray');
    expect(screen.getByText('Nothing to clean up')).toBeInTheDocument();
    expect(screen.getByText('$110/mo')).toBeInTheDocument();
    expect(screen.getByText('$70.08/mo')).toBeInTheDocument();
  });

  it('keeps the other lists when one fails', async () => {
    signIn();
    mockApi({
      'GET /api/auth/me': () => json(makeMe('viewer')),
      'GET /api/accounts': () => json({ items: [] }),
      'GET /api/instances/unregistered': () => json({ items: [], total_monthly_cost: 0 }),
      'GET /api/volumes/orphaned': () => apiError(403, 'forbidden', 'No access to volumes.'),
      'GET /api/snapshots/unused': () => json({ items: [], total_monthly_cost: 0 }),
    });
    renderApp('/waste');

    expect(await screen.findByRole('alert')).toHaveTextContent('Could not load orphaned volumes');
    expect(screen.getAllByText('Nothing to clean up')).toHaveLength(2);
  });

  it('offers viewers no selection and no actions', async () => {
    signIn();
    mockApi(baseHandlers('viewer'));
    renderApp('/waste');

    const table = await screen.findByRole('table', { name: 'Orphaned volumes' });
    expect(within(table).queryByRole('checkbox')).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /clean up/i })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /terminate/i })).not.toBeInTheDocument();
  });

  it('cleans up the selected volumes as a dry run after confirmation and follows each item live', async () => {
    signIn();
    vi.stubGlobal('EventSource', FakeEventSource);
    let job = makeJob();
    let items = [makeItem(), makeItem({ key: 'vol-0bbb', position: 1, resource_id: 'v-2', expected_monthly_saving: 10 })];
    const { calls } = mockApi({
      ...baseHandlers('owner'),
      'POST /api/volumes/orphaned/cleanup': () => json(makeJob({ dry_run: true }), { status: 202 }),
      'GET /api/jobs/job-1': () => json(job),
      'GET /api/jobs/job-1/items': () => json(itemList(job, items)),
    });
    renderApp('/waste');

    const table = await screen.findByRole('table', { name: 'Orphaned volumes' });
    const cleanUp = screen.getByRole('button', { name: 'Clean up selected orphaned volumes' });
    expect(cleanUp).toBeDisabled();
    fireEvent.click(within(table).getByRole('checkbox', { name: 'Select all orphaned volumes' }));
    expect(cleanUp).toHaveTextContent('Clean up (2)');
    fireEvent.click(cleanUp);

    const dialog = await screen.findByRole('dialog', { name: 'Clean up 2 orphaned volumes?' });
    expect(within(dialog).getByRole('list', { name: 'Selected resources' })).toHaveTextContent('vol-0aaavol-0bbb');
    expect(dialog).toHaveTextContent('Up to $50.00 per month saved.');
    fireEvent.click(within(dialog).getByRole('checkbox', { name: /dry run/i }));
    fireEvent.click(within(dialog).getByRole('button', { name: 'Start dry run' }));

    await waitFor(() => expect(screen.queryByRole('dialog')).not.toBeInTheDocument());
    const post = calls.find((call) => call.method === 'POST');
    expect(post?.body).toEqual({ ids: ['v-1', 'v-2'], dry_run: true });

    // The batch panel shows the job and its items.
    expect(await screen.findByRole('heading', { name: /Orphaned volume clean-up/ })).toBeInTheDocument();
    const batch = await screen.findByRole('table', { name: 'Batch items' });
    expect(within(batch).getAllByText('Queued')).toHaveLength(2);

    // A live `job.item` event moves the first item along without a re-read.
    expect(FakeEventSource.latest).not.toBeNull();
    FakeEventSource.latest?.emit('job.item', {
      job_id: 'job-1',
      key: 'vol-0aaa',
      status: 'done',
      monthly_saving: 0,
      result: { mode: 'dry_run', would: ['would snapshot 500 GiB', 'would delete 500 GiB'], would_save: 15 },
      error: null,
    });
    const first = within(batch).getByText('vol-0aaa').closest('tr') as HTMLElement;
    expect(await within(first).findByText('Done')).toBeInTheDocument();
    expect(first).toHaveTextContent('Would: would snapshot 500 GiB');
    expect(first).toHaveTextContent('$15.00 (dry run)');

    // The job ends: the second item was skipped with its reason.
    items = [
      makeItem({ status: 'done', result: { mode: 'dry_run', would_save: 15 } }),
      makeItem({ key: 'vol-0bbb', position: 1, resource_id: 'v-2', status: 'skipped', error: 'vol-0bbb is attached to i-0abc now; it was kept' }),
    ];
    job = makeJob({ dry_run: true, status: 'succeeded', progress: 100, message: 'dry run: 1 done, 0 failed, 1 skipped of 2' });
    expect(await screen.findByText('dry run: 1 done, 0 failed, 1 skipped of 2', {}, { timeout: 3000 })).toBeInTheDocument();
    await waitFor(() => expect(screen.getByText('vol-0bbb is attached to i-0abc now; it was kept')).toBeInTheDocument(), { timeout: 3000 });
    expect(screen.getByText(/1 done · 1 skipped · 0 failed · 0 pending/)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Dismiss' })).toBeInTheDocument();
  });

  it('cancels a running batch', async () => {
    signIn();
    const { calls } = mockApi({
      ...baseHandlers('owner'),
      'POST /api/volumes/orphaned/cleanup': () => json(makeJob({ status: 'running', progress: 40 }), { status: 202 }),
      'GET /api/jobs/job-1': () => json(makeJob({ status: 'running', progress: 40 })),
      'GET /api/jobs/job-1/items': () => json(itemList(makeJob(), [makeItem({ status: 'running', result: { snapshot_id: 'snap-0new' } })])),
      'POST /api/jobs/job-1/cancel': () => json(makeJob({ status: 'running', progress: 40, cancel_requested_at: '2024-05-01T10:01:00Z' })),
    });
    renderApp('/waste');

    const table = await screen.findByRole('table', { name: 'Orphaned volumes' });
    fireEvent.click(within(table).getByRole('checkbox', { name: 'Select vol-0aaa' }));
    fireEvent.click(screen.getByRole('button', { name: 'Clean up selected orphaned volumes' }));
    const dialog = await screen.findByRole('dialog', { name: 'Clean up 1 orphaned volume?' });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Clean up' }));
    expect(await screen.findByText('Snapshot snap-0new (completing…)')).toBeInTheDocument();
    // A running batch that has written no message yet says it is working, not waiting.
    expect(await screen.findByText('Working through the selected items…')).toBeInTheDocument();
    expect(screen.queryByText('Waiting for a worker…')).not.toBeInTheDocument();
    fireEvent.click(screen.getByRole('button', { name: 'Cancel batch' }));
    await waitFor(() => expect(calls.some((call) => call.method === 'POST' && call.url.pathname === '/api/jobs/job-1/cancel')).toBe(true));
    expect(calls.find((call) => call.url.pathname === '/api/volumes/orphaned/cleanup')?.body).toEqual({ ids: ['v-1'], dry_run: false });
  });

  it('shows the retries of an item and why a batch was aborted', async () => {
    signIn();
    const aborted = makeJob({ status: 'failed', progress: 100, message: 'aborted: DeleteVolume: access denied; 1 done, 1 failed, 0 skipped of 2' });
    mockApi({
      ...baseHandlers('owner'),
      'POST /api/volumes/orphaned/cleanup': () => json(makeJob(), { status: 202 }),
      'GET /api/jobs/job-1': () => json(aborted),
      'GET /api/jobs/job-1/items': () =>
        json(
          itemList(aborted, [
            makeItem({ status: 'done', monthly_saving: 12, result: { snapshot_id: 'snap-0new', snapshot_completed: true, retries: 2 } }),
            makeItem({ key: 'vol-0bbb', position: 1, resource_id: 'v-2', status: 'failed', error: 'DeleteVolume: access denied', result: { error_class: 'job' } }),
          ]),
        ),
    });
    renderApp('/waste');

    const table = await screen.findByRole('table', { name: 'Orphaned volumes' });
    fireEvent.click(within(table).getByRole('checkbox', { name: 'Select all orphaned volumes' }));
    fireEvent.click(screen.getByRole('button', { name: 'Clean up selected orphaned volumes' }));
    const dialog = await screen.findByRole('dialog', { name: 'Clean up 2 orphaned volumes?' });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Clean up' }));

    const batch = await screen.findByRole('table', { name: 'Batch items' });
    const first = (await within(batch).findByText('vol-0aaa')).closest('tr') as HTMLElement;
    expect(first).toHaveTextContent('Snapshot snap-0new (completed) · Retried 2× after transient errors');
    const second = within(batch).getByText('vol-0bbb').closest('tr') as HTMLElement;
    expect(second).toHaveTextContent('Batch aborted: DeleteVolume: access denied');
    expect(screen.getByText(/^aborted: DeleteVolume: access denied/)).toBeInTheDocument();
  });

  it('authorizes the selected instances and shows why a batch was refused', async () => {
    signIn();
    let authorized = false;
    const { calls } = mockApi({
      ...baseHandlers('owner'),
      'GET /api/instances/unregistered': () =>
        json(
          authorized
            ? { items: [], total_monthly_cost: 0 }
            : { items: [makeInstance({ id: 'u-1', instance_id: 'i-0stray', cluster_id: undefined, monthly_cost: 70.08 })], total_monthly_cost: 70.08 },
        ),
      'POST /api/instances/unregistered/authorize': () => {
        authorized = true;
        return json({ authorized: 1 });
      },
      'POST /api/instances/unregistered/terminate': () => apiError(422, 'validation_failed', 'instance u-1 is no longer on the waste list', 'ids[0]'),
    });
    renderApp('/waste');

    const table = await screen.findByRole('table', { name: 'Unregistered instances' });
    fireEvent.click(within(table).getByRole('checkbox', { name: 'Select i-0stray' }));

    // Terminate is refused by the server: the dialog stays open with the reason.
    fireEvent.click(screen.getByRole('button', { name: 'Terminate selected unregistered instances' }));
    let dialog = await screen.findByRole('dialog', { name: 'Terminate 1 instance?' });
    expect(dialog).toHaveTextContent('spot-optimizer.io/protect');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Terminate' }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('no longer on the waste list');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }));

    fireEvent.click(screen.getByRole('button', { name: 'Authorize selected unregistered instances' }));
    dialog = await screen.findByRole('dialog', { name: 'Authorize 1 instance?' });
    expect(within(dialog).queryByRole('checkbox', { name: /dry run/i })).not.toBeInTheDocument();
    fireEvent.click(within(dialog).getByRole('button', { name: 'Authorize' }));

    expect(await screen.findByText('1 instance authorized: kept and removed from the waste list.')).toBeInTheDocument();
    expect(calls.find((call) => call.url.pathname === '/api/instances/unregistered/authorize')?.body).toEqual({ ids: ['u-1'] });
    await waitFor(() => expect(screen.queryByRole('table', { name: 'Unregistered instances' })).not.toBeInTheDocument());
  });
});
