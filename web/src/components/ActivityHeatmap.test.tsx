import { render, screen, within } from '@testing-library/react';
import { ActivityHeatmap, heatColor, summarizeActivity, type ActivityCell } from './ActivityHeatmap';

/** A week where weekdays 09–17 are busy, nights are idle and Sunday has no data at all. */
function week(): ActivityCell[] {
  const cells: ActivityCell[] = [];
  for (let weekday = 0; weekday < 6; weekday += 1) {
    for (let hour = 0; hour < 24; hour += 1) {
      const busy = weekday < 5 && hour >= 9 && hour < 18;
      const utilization = busy ? (weekday === 1 && hour === 14 ? 0.72 : 0.5) : 0.05;
      cells.push({ weekday, hour, utilization, idle: !busy, hourly_cost: 2.5 });
    }
  }
  return cells;
}

describe('ActivityHeatmap', () => {
  it('draws 7 days × 24 hours with idle, active and empty cells', () => {
    render(<ActivityHeatmap cells={week()} label="Activity" />);

    const grid = screen.getByRole('table', { name: 'Activity' });
    const rows = within(grid).getAllByRole('row');
    expect(rows).toHaveLength(8); // hour header + 7 days
    expect(within(grid).getAllByRole('rowheader').map((cell) => cell.textContent)).toEqual(['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']);
    expect(within(grid).getAllByRole('columnheader')).toHaveLength(25); // "Day" + 24 hours

    const cells = within(grid).getAllByRole('cell');
    expect(cells).toHaveLength(168);
    expect(cells.filter((cell) => cell.dataset.state === 'active')).toHaveLength(45); // 5 days × 9 hours
    expect(cells.filter((cell) => cell.dataset.state === 'idle')).toHaveLength(144 - 45);
    expect(cells.filter((cell) => cell.classList.contains('heatmap__cell--empty'))).toHaveLength(24);
  });

  it('labels every cell with its day, hour, utilization and cost', () => {
    render(<ActivityHeatmap cells={week()} label="Activity" />);

    const tuesday = screen.getAllByRole('row')[2] as HTMLElement;
    const busiest = within(tuesday).getAllByRole('cell')[14] as HTMLElement;
    expect(busiest).toHaveAttribute('title', 'Tuesday 14:00 UTC: 72% CPU, active · $2.50/h');
    expect(busiest).toHaveTextContent('72%, active');

    const sunday = screen.getAllByRole('row')[7] as HTMLElement;
    expect(within(sunday).getAllByRole('cell')[3]).toHaveAttribute('title', 'Sunday 03:00 UTC: no data');
  });

  it('colors idle hours blue and busy hours red', () => {
    const idle = heatColor({ weekday: 0, hour: 0, utilization: 0, idle: true });
    const busy = heatColor({ weekday: 0, hour: 0, utilization: 0.9, idle: false });
    const [ir, , ib] = idle.match(/\d+/g)!.map(Number) as [number, number, number];
    const [br, , bb] = busy.match(/\d+/g)!.map(Number) as [number, number, number];
    expect(ib).toBeGreaterThan(ir);
    expect(br).toBeGreaterThan(bb);
    expect(busy).toBe('rgb(217 45 32)');
    // Full red at the grid's busiest hour, but not below 40% utilization.
    expect(heatColor({ weekday: 0, hour: 0, utilization: 0.5, idle: false }, 0.5)).toBe('rgb(217 45 32)');
    expect(heatColor({ weekday: 0, hour: 0, utilization: 0.2, idle: false }, 0.2)).not.toBe('rgb(217 45 32)');
  });

  it('summarizes the grid in words, in the caption', () => {
    render(<ActivityHeatmap cells={week()} label="Activity" />);
    const summary = '99 of 144 hours of the week are idle; Saturday entirely idle; busiest Tue 14:00 UTC at 72% CPU.';
    expect(screen.getByText(summary).closest('figcaption')).toBeInTheDocument();
    expect(summarizeActivity([])).toBe('No activity recorded yet.');
  });
});
