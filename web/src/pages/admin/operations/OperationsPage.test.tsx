import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { json, makeMe, mockApi, renderApp, signIn } from '../../../test/api';
import type { Operations } from '../console/api';

function operations(overrides: Partial<Operations> = {}): Operations {
  return {
    generated_at: '2026-11-29T10:00:00Z',
    window_hours: 24,
    kpis: {
      organizations: 12,
      blocked_organizations: 1,
      deleted_organizations: 2,
      accounts: 20,
      clusters: 31,
      nodes: 412,
      monthly_spend: 98765.4,
      monthly_savings: 23456.7,
      decisions_per_hour: 7.25,
      decisions_last_hour: 9,
    },
    funnel: {
      steps: [
        { step: 'pools_scored', count: 120 },
        { step: 'candidates', count: 40 },
        { step: 'planned', count: 30 },
        { step: 'executed', count: 25 },
        { step: 'failed', count: 2 },
        { step: 'blocked', count: 10 },
      ],
      jobs: 8,
      pools_scored: 120,
      pools_degraded: 3,
      candidates: 40,
      planned: 30,
      executed: 25,
      dry_run: 2,
      skipped: 1,
      failed: 2,
      blocked: 10,
      blocked_reasons: [{ reason: 'PodDisruptionBudget allows no eviction', count: 7 }],
      failed_reasons: [{ reason: 'no spot capacity in us-east-1a', count: 2 }],
    },
    stages: [
      { stage: 'scoring', status: 'ok', light: 'green', queued: 0, running: 0, processed: 120, failed: 3, last_activity_at: '2026-11-29T09:59:00Z', detail: 'risk model risk-v1' },
      { stage: 'planning', status: 'backlog', light: 'yellow', queued: 150, running: 2, processed: 8, failed: 1, detail: '8 decision jobs in the window' },
      { stage: 'execution', status: 'stopped', light: 'red', queued: 0, running: 2, processed: 28, failed: 2, detail: 'job worker stopped: database is locked' },
    ],
    ...overrides,
  };
}

const superAdmin = makeMe('owner', { platform_role: 'super_admin' });

describe('Live operations page', () => {
  it('shows the KPIs, the funnel, the stage lights and the reasons', async () => {
    signIn();
    mockApi({
      'GET /api/auth/me': () => json(superAdmin),
      'GET /api/admin/operations': () => json(operations()),
      'GET /api/admin/overrides': () => json({ items: [] }),
    });
    renderApp('/admin/operations');
    const kpis = await screen.findByRole('region', { name: 'Platform KPIs' });
    expect(within(kpis).getByText('Nodes under management').nextSibling).toHaveTextContent('412');
    expect(within(kpis).getByText('$98,765')).toBeInTheDocument();
    expect(within(kpis).getByText('$23,457')).toBeInTheDocument();
    expect(within(kpis).getByText('7.3')).toBeInTheDocument();
    expect(within(kpis).getByText('1 blocked · 2 awaiting purge')).toBeInTheDocument();

    const funnel = screen.getByRole('list', { name: 'Decision funnel' });
    const step = (label: string) => within(funnel).getByText(label).closest('li') as HTMLElement;
    expect(step('Pools scored')).toHaveTextContent('120');
    expect(step('Executed')).toHaveTextContent('25');
    expect(step('Blocked')).toHaveTextContent('10');

    const stages = screen.getByRole('table', { name: 'Pipeline stages' });
    const light = (stage: string) => within(within(stages).getByText(stage).closest('tr') as HTMLElement).getByRole('img');
    expect(light('scoring')).toHaveAccessibleName('Green light');
    expect(light('planning')).toHaveAccessibleName('Yellow light');
    expect(light('execution')).toHaveAccessibleName('Red light');
    expect(within(stages).getByText('job worker stopped: database is locked')).toBeInTheDocument();

    expect(within(screen.getByRole('table', { name: 'Blocked reasons' })).getByText('PodDisruptionBudget allows no eviction')).toBeInTheDocument();
    expect(within(screen.getByRole('table', { name: 'Failure reasons' })).getByText('no spot capacity in us-east-1a')).toBeInTheDocument();
  });

  it('asks for another window', async () => {
    signIn();
    const { calls } = mockApi({
      'GET /api/auth/me': () => json(superAdmin),
      'GET /api/admin/operations': (_r, url) => json(operations({ window_hours: Number(url.searchParams.get('hours')) })),
      'GET /api/admin/overrides': () => json({ items: [] }),
    });
    renderApp('/admin/operations');
    await screen.findByRole('region', { name: 'Platform KPIs' });
    await userEvent.selectOptions(screen.getByLabelText('Window'), '168');
    await waitFor(() => expect(calls.some((c) => c.url.pathname === '/api/admin/operations' && c.url.searchParams.get('hours') === '168')).toBe(true));
  });

  it('is not available to customers and calls no admin API', async () => {
    signIn();
    const { calls } = mockApi({ 'GET /api/auth/me': () => json(makeMe('owner')) });
    renderApp('/admin/operations');
    expect(await screen.findByText('You are not allowed to view this page')).toBeInTheDocument();
    expect(screen.queryByRole('link', { name: /Live operations/ })).not.toBeInTheDocument();
    expect(calls.some((c) => c.url.pathname.startsWith('/api/admin'))).toBe(false);
  });
});
