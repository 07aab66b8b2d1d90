import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { apiError, json, makeCluster, makeMe, mockApi, renderApp, signIn } from '../../test/api';
import { countdown, paint, prewarmSlots, slotIndex, SLOTS } from './grid';

const asleep = Array<boolean>(SLOTS).fill(false);

function schedule(overrides: Record<string, unknown> = {}) {
  return {
    enabled: true,
    slots: asleep,
    timezone: 'America/New_York',
    prewarm_minutes: 30,
    holidays: ['2026-12-25'],
    overrides: [{ date: '2026-11-27', mode: 'awake' }],
    node_groups: [],
    protected_namespaces: ['monitoring'],
    manual: null,
    updated_at: '2026-11-01T10:00:00Z',
    ...overrides,
  };
}

function state(overrides: Record<string, unknown> = {}) {
  return {
    state: 'asleep',
    target: null,
    since: '2026-11-28T23:00:00Z',
    last_error: null,
    desired: 'asleep',
    reason: 'schedule',
    next_transition: { at: '2026-11-30T13:30:00Z', to: 'awake' },
    manual: null,
    saving_hourly: 12.5,
    savings: {
      month_start: '2026-11-01T00:00:00Z',
      hours_elapsed: 672,
      hours_asleep: 300,
      baseline_hourly: 20,
      counterfactual_usd: 13440,
      saved_usd: 4250,
      actual_usd: 9190,
    },
    remembered: [{ asg_name: 'eks-spot', min_size: 1, max_size: 6, desired_capacity: 3 }],
    groups: ['eks-spot', 'eks-db'],
    transitions: [],
    ...overrides,
  };
}

function handlers(role: 'owner' | 'viewer') {
  return {
    'GET /api/auth/me': () => json(makeMe(role)),
    'GET /api/clusters': () => json({ items: [makeCluster()], total: 1 }),
    'GET /api/clusters/c-1/hibernation': () => json(schedule()),
    'GET /api/clusters/c-1/hibernation/state': () => json(state()),
    'GET /api/holidays/countries': () =>
      json({
        items: [
          { code: 'DE', name: 'Germany' },
          { code: 'US', name: 'United States' },
        ],
        first_year: 2024,
        last_year: 2099,
      }),
  };
}

describe('grid helpers', () => {
  it('paints the dragged rectangle and marks pre-warm slots before each wake', () => {
    const painted = paint(asleep, [0, 9], [4, 17], true);
    expect(painted.filter(Boolean)).toHaveLength(5 * 9);
    expect(painted[slotIndex(4, 17)]).toBe(true);
    expect(painted[slotIndex(5, 9)]).toBe(false);
    // 30 minutes warm the slot before 09:00; 90 minutes the two before; Monday wraps to Sunday.
    expect([...prewarmSlots(painted, 30)].sort((a, b) => a - b)).toEqual([8, 32, 56, 80, 104]);
    expect(prewarmSlots(painted, 90).size).toBe(10);
    const monday = paint(asleep, [0, 0], [0, 0], true);
    expect([...prewarmSlots(monday, 60)]).toEqual([slotIndex(6, 23)]);
    expect(prewarmSlots(painted, 0).size).toBe(0);
  });

  it('counts down in hours and minutes', () => {
    expect(countdown('2026-11-30T08:12:00Z', new Date('2026-11-30T00:00:00Z'))).toBe('08h 12m');
    expect(countdown('2026-12-03T02:00:00Z', new Date('2026-11-30T00:00:00Z'))).toBe('3d 02h');
  });
});

describe('Cluster hibernation', () => {
  it('shows the state, the countdown and this month’s savings', async () => {
    signIn();
    mockApi(handlers('owner'));
    renderApp('/hibernation');
    expect(await screen.findByTestId('hibernation-state')).toHaveTextContent('Hibernating');
    expect(screen.getByTestId('savings')).toHaveTextContent('$4,250.00');
    expect(screen.getByText(/Saving \$12\.50\/hour/)).toBeInTheDocument();
    expect(screen.getByRole('link', { name: /cluster hibernation/i })).toBeInTheDocument();
  });

  it('paints office hours by dragging and saves them; a bad field shows its 422', { timeout: 20_000 }, async () => {
    signIn();
    let saved: Record<string, unknown> | undefined;
    const { calls } = mockApi({
      ...handlers('owner'),
      'PUT /api/clusters/c-1/hibernation': async (request) => {
        saved = (await request.json()) as Record<string, unknown>;
        return json(schedule({ slots: saved.slots }));
      },
    });
    renderApp('/hibernation');
    const grid = await screen.findByRole('table', { name: 'Weekly schedule' });
    const cell = (label: string) => within(grid).getByRole('gridcell', { name: new RegExp(`^${label}`) });
    expect(cell('Mon 08:00')).toHaveAttribute('data-kind', 'asleep');
    fireEvent.mouseDown(cell('Mon 09:00'));
    fireEvent.mouseEnter(cell('Wed 11:00'));
    fireEvent.mouseEnter(cell('Fri 17:00'));
    fireEvent.mouseUp(window);
    // Entering another cell after the release paints nothing.
    fireEvent.mouseEnter(cell('Sun 20:00'));
    expect(cell('Fri 17:00')).toHaveAttribute('data-kind', 'awake');
    expect(cell('Sun 20:00')).toHaveAttribute('data-kind', 'asleep');
    expect(cell('Mon 08:00')).toHaveAttribute('data-kind', 'prewarm');
    expect(screen.getByText(/45 awake hours a week/)).toBeInTheDocument();

    fireEvent.click(screen.getByRole('button', { name: 'Save schedule' }));
    await waitFor(() => expect(saved).toBeDefined());
    const slots = saved?.slots as boolean[];
    expect(slots.filter(Boolean)).toHaveLength(45);
    expect(slots[slotIndex(0, 9)] && slots[slotIndex(4, 17)] && !slots[slotIndex(5, 9)]).toBe(true);
    expect(saved?.protected_namespaces).toEqual(['monitoring']);
    expect(saved?.holidays).toEqual(['2026-12-25']);

    // The server's field error is shown at its field.
    mockApi({
      ...handlers('owner'),
      'PUT /api/clusters/c-1/hibernation': () => apiError(422, 'validation_failed', 'timezone: unknown IANA time zone', 'timezone'),
    });
    fireEvent.click(screen.getByRole('button', { name: 'Save schedule' }));
    expect(await screen.findByText('timezone: unknown IANA time zone')).toBeInTheDocument();
    expect(calls.some((c) => c.method === 'PUT')).toBe(true);
  });

  it('hibernates now for the chosen hours and offers to resume the schedule', async () => {
    signIn();
    const { calls } = mockApi({
      ...handlers('owner'),
      'GET /api/clusters/c-1/hibernation/state': () => json(state({ state: 'awake', desired: 'awake', saving_hourly: 0 })),
      'POST /api/clusters/c-1/hibernation/sleep': () =>
        json(state({ manual: { state: 'asleep', until: '2026-11-30T04:00:00Z', set_by: 'u-self' }, reason: 'manual' })),
    });
    renderApp('/hibernation');
    expect(await screen.findByTestId('hibernation-state')).toHaveTextContent('Active');
    fireEvent.change(screen.getByLabelText('For'), { target: { value: '4' } });
    fireEvent.click(screen.getByRole('button', { name: 'Hibernate now' }));
    await waitFor(() => expect(screen.getByTestId('hibernation-state')).toHaveTextContent('Hibernating'));
    const post = calls.find((c) => c.method === 'POST');
    expect(post?.url.pathname).toBe('/api/clusters/c-1/hibernation/sleep');
    expect(post?.body).toEqual({ hours: 4 });
    expect(screen.getByRole('button', { name: 'Resume schedule' })).toBeInTheDocument();
    expect(screen.getByText(/Manual override: hibernating until/)).toBeInTheDocument();
  });

  it('imports a country’s national holidays into the calendar, unsaved until saved', async () => {
    signIn();
    const year = new Date().getFullYear() + 1;
    let saved: Record<string, unknown> | undefined;
    const { calls } = mockApi({
      ...handlers('owner'),
      'GET /api/holidays': (_request, url) =>
        json({
          country: url.searchParams.get('country'),
          country_name: 'United States',
          year: Number(url.searchParams.get('year')),
          items: [
            { date: `${year}-01-01`, name: "New Year's Day" },
            { date: `${year}-07-04`, name: 'Independence Day' },
            { date: '2026-12-25', name: 'Christmas Day' },
          ],
        }),
      'PUT /api/clusters/c-1/hibernation': async (request) => {
        saved = (await request.json()) as Record<string, unknown>;
        return json(schedule({ holidays: saved.holidays }));
      },
    });
    renderApp('/hibernation');
    const country = await screen.findByLabelText('Country');
    await waitFor(() => expect(within(country).getAllByRole('option')).toHaveLength(2));
    expect(screen.queryByTestId('schedule-unsaved')).not.toBeInTheDocument();
    fireEvent.change(country, { target: { value: 'US' } });
    fireEvent.change(screen.getByLabelText('Year'), { target: { value: String(year) } });
    fireEvent.click(screen.getByRole('button', { name: 'Import national holidays' }));
    const list = screen.getByRole('list', { name: 'Holidays' });
    expect(await within(list).findByText(new RegExp(`${year}-07-04 · Independence Day`))).toBeInTheDocument();
    const get = calls.find((c) => c.url.pathname === '/api/holidays');
    expect(get?.url.searchParams.get('country')).toBe('US');
    expect(get?.url.searchParams.get('year')).toBe(String(year));
    // Christmas 2026 was already there: two new dates.
    expect(await screen.findByText(/Added 2 national holidays of United States/)).toBeInTheDocument();
    expect(screen.getByTestId('schedule-unsaved')).toHaveTextContent('Unsaved changes');
    fireEvent.click(screen.getByRole('button', { name: 'Save schedule' }));
    await waitFor(() => expect(saved).toBeDefined());
    expect(saved?.holidays).toEqual(['2026-12-25', `${year}-01-01`, `${year}-07-04`]);
    await waitFor(() => expect(screen.queryByTestId('schedule-unsaved')).not.toBeInTheDocument());
  });

  it('gives viewers no controls', async () => {
    signIn();
    mockApi(handlers('viewer'));
    renderApp('/hibernation');
    const grid = await screen.findByRole('table', { name: 'Weekly schedule' });
    expect(screen.queryByRole('button', { name: 'Hibernate now' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Save schedule' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Import national holidays' })).not.toBeInTheDocument();
    const cell = within(grid).getByRole('gridcell', { name: /^Mon 09:00/ });
    fireEvent.mouseDown(cell);
    expect(cell).toHaveAttribute('data-kind', 'asleep');
  });
});
