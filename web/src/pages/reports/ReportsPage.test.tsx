import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Role } from '../../api/types';
import { json, makeMe, mockApi, renderApp, signIn } from '../../test/api';

const summary = {
  id: 'r-1',
  kind: 'scheduled',
  period_start: '2026-11-16T00:00:00Z',
  period_end: '2026-11-23T00:00:00Z',
  subject: 'Spot Optimizer weekly report for Acme Corp',
  created_by: 'system',
  created_at: '2026-11-23T00:05:00Z',
  efficiency_grade: 'B',
  trend: 'improving',
  spend: 1234.5,
  savings: 456.25,
  notification_id: 'n-1',
  delivery_status: 'delivered',
};

const figures = {
  period_start: summary.period_start,
  period_end: summary.period_end,
  spend: 1234.5,
  on_demand_baseline: 1690.75,
  savings: 456.25,
  savings_percent: 27,
  hours_observed: 168,
  monthly_spend: 5400,
  potential_savings: 800,
  efficiency_score: 0.7,
  efficiency_grade: 'B',
  grade_trend: [
    { week_start: '2026-11-09T00:00:00Z', grade: 'C', score: 0.55 },
    { week_start: '2026-11-16T00:00:00Z', grade: 'B', score: 0.7 },
  ],
  trend: 'improving',
  top_action: { kind: 'spot', title: 'Move on-demand cluster nodes to Spot', detail: '4 cluster nodes run on demand.', monthly_savings: 612 },
  hibernation_savings: 88,
  hibernation_hours_asleep: 40,
  hibernation_opportunity_monthly: 120,
  clusters: 2,
  nodes: 9,
  spot_share: 0.55,
};

function setup(role: Role) {
  signIn();
  return mockApi({
    'GET /api/auth/me': () => json(makeMe(role)),
    'GET /api/reports': () => json({ items: [summary] }),
    'GET /api/reports/r-1': () => json({ ...summary, figures, html: '<p>Weekly report for Acme Corp</p>', text: 'Weekly report' }),
    'GET /api/reports/r-2': () => json({ ...summary, id: 'r-2', kind: 'manual', figures, html: '<p>now</p>', text: 'now' }),
    'POST /api/reports': () => json({ ...summary, id: 'r-2', kind: 'manual', figures, html: '<p>now</p>', text: 'now' }, { status: 201 }),
  });
}

describe('Weekly reports', () => {
  it('lists the weeks with their grade, trend and delivery, and opens one', async () => {
    setup('viewer');
    const user = userEvent.setup();
    renderApp('/reports');
    const table = await screen.findByRole('table', { name: 'Weekly reports' });
    const row = within(table).getAllByRole('row')[1] as HTMLElement;
    expect(within(row).getByText('B')).toBeInTheDocument();
    expect(within(row).getByText('improving')).toBeInTheDocument();
    expect(within(row).getByText('delivered')).toBeInTheDocument();
    expect(within(row).getByText('$1,235')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Make report now' })).not.toBeInTheDocument();
    await user.click(within(row).getByRole('link'));
    expect(await screen.findByText('Move on-demand cluster nodes to Spot')).toBeInTheDocument();
    const grades = screen.getByRole('list', { name: 'Weekly grades' });
    expect(within(grades).getAllByRole('listitem').map((li) => li.textContent?.slice(-1))).toEqual(['C', 'B']);
    expect(screen.getByText('$456')).toBeInTheDocument();
    expect(screen.getByTitle('Report e-mail')).toHaveAttribute('sandbox', '');
  });

  it('lets an admin make a report now and opens it', async () => {
    const { calls } = setup('admin');
    const user = userEvent.setup();
    renderApp('/reports');
    await user.click(await screen.findByRole('button', { name: 'Make report now' }));
    expect(await screen.findByText(/Made on demand/)).toBeInTheDocument();
    expect(calls.filter((c) => c.method === 'POST' && c.url.pathname === '/api/reports')).toHaveLength(1);
  });
});
