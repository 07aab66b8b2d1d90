import { screen, within } from '@testing-library/react';
import { apiError, json, makeAccount, makeInstance, makeMe, mockApi, renderApp, signIn } from '../../test/api';

describe('Waste', () => {
  it('lists each kind of waste with its potential savings and the overall total', async () => {
    signIn();
    mockApi({
      'GET /api/auth/me': () => json(makeMe('viewer')),
      'GET /api/accounts': () => json({ items: [makeAccount()] }),
      'GET /api/instances/unregistered': () =>
        json({ items: [makeInstance({ id: 'u-1', instance_id: 'i-0stray', cluster_id: undefined, monthly_cost: 70.08 })], total_monthly_cost: 70.08 }),
      'GET /api/volumes/orphaned': () =>
        json({
          items: [
            { id: 'v-1', account_id: 'acc-1', volume_id: 'vol-0aaa', size_gib: 500, volume_type: 'gp3', last_attached_at: null, created_at: '2024-01-01T00:00:00Z', monthly_cost: 40 },
          ],
          total_monthly_cost: 40,
        }),
      'GET /api/snapshots/unused': () => json({ items: [], total_monthly_cost: 0 }),
    });
    renderApp('/waste');

    const volumes = await screen.findByRole('table', { name: 'Orphaned volumes' });
    const volume = within(volumes).getAllByRole('row')[1] as HTMLElement;
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
});
