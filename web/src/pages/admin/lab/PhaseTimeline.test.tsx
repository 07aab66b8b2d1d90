import { render, screen, within } from '@testing-library/react';
import type { LabPhase, LabSwitch } from '../../../api/types';
import { PhaseTimeline } from './PhaseTimeline';
import { seriesOf } from './api';

function phase(seq: number, name: string, status: string, duration_ms: number | null, startedAgoMs = 0): LabPhase {
  return {
    seq,
    name,
    status,
    started_at: new Date(Date.now() - startedAgoMs).toISOString(),
    finished_at: duration_ms === null ? null : new Date().toISOString(),
    duration_ms,
    detail: status === 'skipped' ? { reason: 'the instance has no data volume' } : {},
  };
}

function sw(phases: LabPhase[], status = 'running'): LabSwitch {
  return {
    id: 's-1',
    organization_id: 'o',
    account_id: 'a',
    cluster_id: 'c',
    instance_id: 'i-0abc',
    model_id: 'm',
    status,
    requested_by: 'admin@x',
    created_at: new Date().toISOString(),
    phases,
  };
}

describe('PhaseTimeline', () => {
  it('lists every phase in execution order with its measured time', () => {
    render(
      <PhaseTimeline
        sw={sw(
          [
            phase(0, 'spot_request', 'done', 1100),
            phase(1, 'boot', 'done', 4200),
            phase(2, 'node_ready', 'done', 2500),
            phase(3, 'cordon', 'done', 300),
            phase(4, 'drain', 'done', 3000),
            phase(5, 'volume_detach', 'skipped', 0),
            phase(6, 'volume_attach', 'skipped', 0),
            phase(7, 'terminate', 'done', 500),
          ],
          'succeeded',
        )}
      />,
    );
    const items = within(screen.getByRole('list', { name: 'Switch phases' })).getAllByRole('listitem');
    expect(items.map((i) => i.getAttribute('data-phase'))).toEqual(['spot_request', 'boot', 'node_ready', 'cordon', 'drain', 'volume_detach', 'volume_attach', 'terminate']);
    expect(screen.getByLabelText('Boot time')).toHaveTextContent('4.2 s');
    expect(screen.getByLabelText('Spot request time')).toHaveTextContent('1.1 s');
    expect(screen.getByLabelText('Cordon time')).toHaveTextContent('300 ms');
    expect(within(items[5] as HTMLElement).getByText('Skipped')).toBeInTheDocument();
    expect(within(items[5] as HTMLElement).getByText('the instance has no data volume')).toBeInTheDocument();
    expect(screen.getByText('11.6 s')).toBeInTheDocument();
  });

  it('runs a live timer on the running phase and shows later phases as waiting', () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      render(<PhaseTimeline sw={sw([phase(0, 'spot_request', 'done', 1000), phase(1, 'boot', 'running', null, 3000)])} />);
      expect(screen.getByLabelText('Boot time').textContent).toMatch(/^3\.\d s$/);
      expect(screen.getByText('Running…')).toBeInTheDocument();
      expect(screen.getAllByText('Waiting')).toHaveLength(6);
      expect(screen.getByText(/Elapsed/)).toBeInTheDocument();
    } finally {
      vi.useRealTimers();
    }
  });

  it('says which phases a failed switch never reached', () => {
    render(<PhaseTimeline sw={sw([phase(0, 'spot_request', 'failed', 800)], 'failed')} />);
    expect(screen.getByText('Failed')).toBeInTheDocument();
    expect(screen.getAllByText('not reached')).toHaveLength(7);
  });
});

describe('seriesOf', () => {
  it('puts both arms of a tick side by side and accumulates interruptions', () => {
    const s = (tick: number, arm: string, hourly_cost: number, interruptions: number, decisions: number) => ({
      tick,
      arm,
      at: '2026-01-01T00:00:00Z',
      hourly_cost,
      on_demand_cost: 1,
      running: 2,
      interruptions,
      decisions,
    });
    expect(seriesOf([s(1, 'b', 0.4, 1, 0), s(0, 'a', 0.5, 0, 2), s(0, 'b', 0.6, 1, 1), s(1, 'a', 0.45, 1, 0)])).toEqual([
      { tick: 0, costA: 0.5, interruptionsA: 0, decisionsA: 2, costB: 0.6, interruptionsB: 1, decisionsB: 1 },
      { tick: 1, costA: 0.45, interruptionsA: 1, decisionsA: 0, costB: 0.4, interruptionsB: 2, decisionsB: 0 },
    ]);
  });
});
