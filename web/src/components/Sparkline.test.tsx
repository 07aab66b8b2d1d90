import { render, screen } from '@testing-library/react';
import { Sparkline, sparklinePoints } from './Sparkline';

/** The line's points as [x, y] pairs, parsed from its `d` ("M1 2 L3 4 …"). */
function linePoints(container: HTMLElement): number[][] {
  const d = container.querySelector('path.sparkline__line')?.getAttribute('d') ?? '';
  return [...d.matchAll(/[ML]([\d.]+) ([\d.]+)/g)].map((match) => [Number(match[1]), Number(match[2])]);
}

describe('Sparkline', () => {
  it('draws one point per value, left to right, higher values nearer the top', () => {
    const { container } = render(<Sparkline values={[9, 12, 10, 15]} label="Nodes" width={60} height={20} />);
    const svg = screen.getByRole('img', { name: 'Nodes: latest 15, min 9, max 15' });
    expect(svg).toHaveAttribute('viewBox', '0 0 60 20');
    expect(container.querySelectorAll('path')).toHaveLength(1);
    const points = linePoints(container);
    expect(points).toHaveLength(4);
    const xs = points.map(([x]) => x as number);
    expect(xs).toEqual([...xs].sort((a, b) => a - b));
    const ys = points.map(([, y]) => y as number);
    // The max (15) is at the top edge, the min (9) at the bottom, inside the padding.
    expect(Math.min(...ys)).toBe(ys[3]);
    expect(Math.max(...ys)).toBe(ys[0]);
    for (const [x, y] of points) {
      expect(x).toBeGreaterThan(0);
      expect(x).toBeLessThan(60);
      expect(y).toBeGreaterThan(0);
      expect(y).toBeLessThan(20);
    }
    // A dot marks the latest value.
    const dot = container.querySelector('circle.sparkline__dot');
    expect(dot).toHaveAttribute('cx', String(points[3]?.[0]));
    expect(dot).toHaveAttribute('cy', String(points[3]?.[1]));
  });

  it('runs a flat series through the middle', () => {
    const { container } = render(<Sparkline values={[7, 7, 7]} label="Pods" height={18} />);
    const points = linePoints(container);
    expect(points).toHaveLength(3);
    expect(points.map(([, y]) => y)).toEqual([9, 9, 9]);
    expect(screen.getByRole('img')).toHaveAccessibleName('Pods: latest 7, min 7, max 7');
  });

  it('shows a single reading as a dot at the right edge', () => {
    const { container } = render(<Sparkline values={[42]} label="Nodes" width={56} height={18} />);
    expect(linePoints(container)).toHaveLength(1);
    expect(container.querySelector('circle.sparkline__dot')).toHaveAttribute('cx', '53.5');
    expect(screen.getByRole('img')).toHaveAccessibleName('Nodes: latest 42, a single reading');
  });

  it('draws a placeholder and says so when there is no data', () => {
    const { container } = render(<Sparkline values={[]} label="Nodes" />);
    expect(container.querySelector('path')).toBeNull();
    expect(container.querySelector('circle')).toBeNull();
    expect(container.querySelector('line.sparkline__empty')).toBeInTheDocument();
    expect(screen.getByRole('img')).toHaveAccessibleName('Nodes: no data');
  });

  it('formats the numbers in its label', () => {
    render(<Sparkline values={[2100, 2050.5, 2000]} label="Cost" format={(value) => `$${Math.round(value).toLocaleString('en-US')}`} />);
    expect(screen.getByRole('img')).toHaveAccessibleName('Cost: latest $2,000, min $2,000, max $2,100');
  });

  it('never produces NaN coordinates', () => {
    for (const values of [[], [0], [0, 0], [1, 2], [-5, 5, 0]]) {
      for (const point of sparklinePoints(values, 40, 12)) {
        expect(Number.isFinite(point.x) && Number.isFinite(point.y)).toBe(true);
      }
    }
  });
});
