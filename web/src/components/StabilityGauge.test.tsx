import { render, screen } from '@testing-library/react';
import { StabilityGauge, stabilityTone } from './StabilityGauge';

describe('StabilityGauge', () => {
  it('is green and "stable" from 80', () => {
    render(<StabilityGauge value={92.4} />);
    const gauge = screen.getByRole('meter', { name: 'Stability index' });
    expect(gauge).toHaveAttribute('aria-valuenow', '92');
    expect(gauge).toHaveAttribute('aria-valuetext', '92 of 100, stable');
    expect(gauge).toHaveClass('stability-gauge--success');
    expect(gauge).toHaveTextContent('92');
    expect(gauge).toHaveTextContent('Stable');
  });

  it('turns orange below 80 and red below 50', () => {
    const { rerender } = render(<StabilityGauge value={79.6} label="Cluster stability" />);
    const gauge = screen.getByRole('meter', { name: 'Cluster stability' });
    // 79.6 rounds to 80 for display but is still under the threshold.
    expect(gauge).toHaveClass('stability-gauge--warning');
    expect(gauge).toHaveAttribute('aria-valuetext', '80 of 100, under stress');

    rerender(<StabilityGauge value={35} label="Cluster stability" />);
    expect(gauge).toHaveClass('stability-gauge--danger');
    expect(gauge).toHaveTextContent('At risk');
  });

  it('fills the arc in proportion and clamps out-of-range values', () => {
    const { container, rerender } = render(<StabilityGauge value={64} />);
    const arc = () => container.querySelector('.stability-gauge__value');
    expect(arc()).toHaveAttribute('stroke-dasharray', '64 100');

    rerender(<StabilityGauge value={140} />);
    expect(arc()).toHaveAttribute('stroke-dasharray', '100 100');
    expect(screen.getByRole('meter')).toHaveAttribute('aria-valuenow', '100');

    rerender(<StabilityGauge value={-5} />);
    expect(arc()).toHaveAttribute('stroke-dasharray', '0 100');
  });

  it('maps scores to tones at the documented thresholds', () => {
    expect([100, 80, 79.9, 50, 49.9, 0].map(stabilityTone)).toEqual(['success', 'success', 'warning', 'warning', 'danger', 'danger']);
  });
});
