export type MeterTone = 'primary' | 'success' | 'warning' | 'danger';

interface MeterProps {
  /** Accessible name, e.g. "Spot share". */
  label: string;
  /** 0–1; values above 1 draw a full bar (over-commitment) but are announced as they are. */
  value: number;
  tone?: MeterTone;
}

/** Thin horizontal bar for a ratio, announced as a percentage. */
export function Meter({ label, value, tone = 'primary' }: MeterProps) {
  const percent = Math.round(Math.max(0, value) * 100);
  return (
    <span
      className={`meter meter--${tone}`}
      role="meter"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={percent}
      aria-valuetext={`${percent}%`}
    >
      <span className="meter__fill" style={{ width: `${Math.min(percent, 100)}%` }} />
    </span>
  );
}

const RADIUS = 15;
const CIRCUMFERENCE = 2 * Math.PI * RADIUS;

/** Ring gauge for a 0–100 score with the number in the middle. */
export function Gauge({ label, value, tone, size = 40 }: { label: string; value: number; tone: MeterTone; size?: number }) {
  const clamped = Math.min(100, Math.max(0, value));
  return (
    <span
      className={`gauge gauge--${tone}`}
      role="meter"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={clamped}
      style={{ width: size, height: size, fontSize: Math.round(size * 0.32) }}
    >
      <svg viewBox="0 0 36 36" aria-hidden="true">
        <circle className="gauge__track" cx="18" cy="18" r={RADIUS} />
        <circle
          className="gauge__value"
          cx="18"
          cy="18"
          r={RADIUS}
          strokeDasharray={`${(clamped / 100) * CIRCUMFERENCE} ${CIRCUMFERENCE}`}
          transform="rotate(-90 18 18)"
        />
      </svg>
      <span className="gauge__number" aria-hidden="true">
        {Math.round(clamped)}
      </span>
    </span>
  );
}
