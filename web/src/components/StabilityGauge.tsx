import type { MeterTone } from './Meter';

/** Below this the gauge warns: saving money may be costing stability. */
export const STABILITY_THRESHOLD = 80;

/** Green from 80, orange from 50, red below. */
export function stabilityTone(score: number): Exclude<MeterTone, 'primary'> {
  if (score >= STABILITY_THRESHOLD) return 'success';
  return score >= 50 ? 'warning' : 'danger';
}

const STATUS: Record<Exclude<MeterTone, 'primary'>, string> = {
  success: 'Stable',
  warning: 'Under stress',
  danger: 'At risk',
};

// Half circle from the left end (0) over the top to the right end (100).
const ARC = 'M 12 62 A 48 48 0 0 1 108 62';
const RADIUS = 48;
const CENTER = { x: 60, y: 62 };

/** Point on the arc for a 0–100 value (for the threshold tick). */
function pointAt(value: number, radius: number) {
  const angle = Math.PI * (1 - value / 100);
  return { x: CENTER.x + radius * Math.cos(angle), y: CENTER.y - radius * Math.sin(angle) };
}

interface StabilityGaugeProps {
  /** 0–100. */
  value: number;
  label?: string;
  /** Rendered width in px (height follows). */
  size?: number;
}

/**
 * Half-ring gauge for a 0–100 stability index: green at 80 and above, orange below 80, red
 * below 50, with a tick at the 80 threshold. Announced as a meter with a status in words.
 */
export function StabilityGauge({ value, label = 'Stability index', size = 220 }: StabilityGaugeProps) {
  const clamped = Math.min(100, Math.max(0, value));
  const tone = stabilityTone(clamped);
  const rounded = Math.round(clamped);
  const inner = pointAt(STABILITY_THRESHOLD, RADIUS - 9);
  const outer = pointAt(STABILITY_THRESHOLD, RADIUS + 9);
  return (
    <div
      className={`stability-gauge stability-gauge--${tone}`}
      role="meter"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={rounded}
      aria-valuetext={`${rounded} of 100, ${STATUS[tone].toLowerCase()}`}
      style={{ width: size }}
    >
      <svg viewBox="0 0 120 72" aria-hidden="true">
        <path className="stability-gauge__track" d={ARC} pathLength={100} />
        <path className="stability-gauge__value" d={ARC} pathLength={100} strokeDasharray={`${clamped} 100`} />
        <line className="stability-gauge__tick" x1={inner.x} y1={inner.y} x2={outer.x} y2={outer.y} />
        <text className="stability-gauge__number" x={60} y={56} textAnchor="middle">
          {rounded}
        </text>
        <text className="stability-gauge__scale" x={12} y={71} textAnchor="middle">
          0
        </text>
        <text className="stability-gauge__scale" x={108} y={71} textAnchor="middle">
          100
        </text>
      </svg>
      <span className="stability-gauge__status" aria-hidden="true">
        {STATUS[tone]}
      </span>
    </div>
  );
}
