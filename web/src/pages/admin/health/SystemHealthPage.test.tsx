import { screen, within } from '@testing-library/react';
import type { SystemHealth } from '../../../api/types';
import { json, makeMe, mockApi, renderApp, signIn } from '../../../test/api';
import { queueLight } from './SystemHealthPage';

function health(overrides: Partial<SystemHealth> = {}): SystemHealth {
  return {
    status: 'ok',
    database: 'ok',
    safe_mode: false,
    risk_model: { id: 'shipped:risk-v1', name: 'risk-v1 (shipped)', runtime: 'onnx:tract', degraded: false },
    job_queue: {
      worker_alive: true,
      worker_restarts: 2,
      kinds: [
        { kind: 'optimize', queued: 5, running: 1, light: 'green' },
        { kind: 'risk_recompute', queued: 250, running: 0, light: 'yellow' },
        { kind: 'batch', queued: 900, running: 3, light: 'red' },
      ],
    },
    actors: [{ account_id: 'acc-1', organization_id: 'o1', state: 'restarting', restarts: 4, clusters: 2, last_failure: 'cloud timeout', cluster_models: [] }],
    ...overrides,
  };
}

describe('System health page', () => {
  it('maps queue depth to traffic lights', () => {
    expect(queueLight(0)).toBe('green');
    expect(queueLight(99)).toBe('green');
    expect(queueLight(100)).toBe('yellow');
    expect(queueLight(500)).toBe('yellow');
    expect(queueLight(501)).toBe('red');
  });

  it('shows components, the job queue lights and the actors', async () => {
    signIn();
    mockApi({
      'GET /api/auth/me': () => json(makeMe('owner', { platform_role: 'super_admin' })),
      'GET /api/admin/health': () => json(health({ status: 'degraded', job_queue: { ...health().job_queue, last_error: 'database is locked' } })),
      'GET /api/admin/logs': () => json({ items: [], capacity: 2000 }),
      'GET /api/admin/logs/changes': () => json({ items: [] }),
    });
    renderApp('/admin/health');
    const components = await screen.findByRole('list', { name: 'Components' });
    expect(within(components).getByText('Degraded')).toBeInTheDocument();
    expect(within(components).getByText('Alive')).toBeInTheDocument();
    expect(within(components).getByText('Worker restarts').nextSibling).toHaveTextContent('2');
    expect(within(components).getByText('0 / 1 running')).toBeInTheDocument();
    expect(screen.getByText('Last queue error: database is locked')).toBeInTheDocument();

    const queue = screen.getByRole('table', { name: 'Job queue depth' });
    const light = (kind: string) => within(within(queue).getByText(kind).closest('tr') as HTMLElement).getByRole('img');
    expect(light('optimize')).toHaveAccessibleName('Green light');
    expect(light('risk_recompute')).toHaveAccessibleName('Yellow light');
    expect(light('batch')).toHaveAccessibleName('Red light');

    const actors = screen.getByRole('table', { name: 'Account actors' });
    expect(within(actors).getByText('restarting')).toBeInTheDocument();
    expect(within(actors).getByText('cloud timeout')).toBeInTheDocument();
  });

  it('shows a stopped worker', async () => {
    signIn();
    mockApi({
      'GET /api/auth/me': () => json(makeMe('owner', { platform_role: 'super_admin' })),
      'GET /api/admin/health': () => json(health({ job_queue: { worker_alive: false, worker_restarts: 0, kinds: [] } })),
      'GET /api/admin/logs': () => json({ items: [], capacity: 2000 }),
      'GET /api/admin/logs/changes': () => json({ items: [] }),
    });
    renderApp('/admin/health');
    const components = await screen.findByRole('list', { name: 'Components' });
    expect(within(components).getByText('Stopped')).toBeInTheDocument();
    expect(screen.getByText('No queued or running jobs.')).toBeInTheDocument();
  });

  it('is not available to customers', async () => {
    signIn();
    const { calls } = mockApi({ 'GET /api/auth/me': () => json(makeMe('viewer')) });
    renderApp('/admin/health');
    expect(await screen.findByText('You are not allowed to view this page')).toBeInTheDocument();
    expect(calls.some((c) => c.url.pathname.startsWith('/api/admin'))).toBe(false);
  });
});
