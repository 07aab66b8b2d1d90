interface SparklineProps {
  /** Oldest first; one point per value. */
  values: number[];
  /** What the series is, e.g. "Nodes over 24 hours": the start of the accessible name. */
  label: string;
  /** Formats the numbers in the accessible name (default: `toLocaleString`). */
  format?: (value: number) => string;
  /** Rendered size in px. */
  width?: number;
  height?: number;
  className?: string;
}

/** Room for the stroke and the end dot, so neither is clipped at the edges. */
const PAD = 2.5;

const round = (value: number) => Math.round(value * 100) / 100;

/** Accessible summary: "Nodes over 24 hours: latest 10, min 9, max 10". */
export function sparklineSummary(values: number[], label: string, format: (value: number) => string = (value) => value.toLocaleString()): string {
  if (values.length === 0) return `${label}: no data`;
  const latest = format(values[values.length - 1] as number);
  if (values.length === 1) return `${label}: latest ${latest}, a single reading`;
  return `${label}: latest ${latest}, min ${format(Math.min(...values))}, max ${format(Math.max(...values))}`;
}

/** Points of the line inside a `width` × `height` box; a flat series runs through the middle. */
export function sparklinePoints(values: number[], width: number, height: number): { x: number; y: number }[] {
  if (values.length === 0) return [];
  const min = Math.min(...values);
  const max = Math.max(...values);
  const span = max - min;
  const step = values.length > 1 ? (width - 2 * PAD) / (values.length - 1) : 0;
  return values.map((value, index) => ({
    // A single reading sits at the right edge, where the latest point always is.
    x: round(values.length > 1 ? PAD + index * step : width - PAD),
    y: round(span > 0 ? PAD + ((max - value) / span) * (height - 2 * PAD) : height / 2),
  }));
}

/**
 * Tiny line chart without axes for a table cell or a stat tile, scaled to the series' own
 * min–max, with a dot on the latest value. Announced as an image summarising min, max and latest.
 */
export function Sparkline({ values, label, format, width = 56, height = 18, className }: SparklineProps) {
  const points = sparklinePoints(values, width, height);
  const last = points[points.length - 1];
  return (
    <svg
      className={className ? `sparkline ${className}` : 'sparkline'}
      role="img"
      aria-label={sparklineSummary(values, label, format)}
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      focusable="false"
    >
      {points.length === 0 ? (
        <line className="sparkline__empty" x1={PAD} y1={height / 2} x2={width - PAD} y2={height / 2} />
      ) : (
        <path className="sparkline__line" d={points.map((point, index) => `${index === 0 ? 'M' : 'L'}${point.x} ${point.y}`).join(' ')} />
      )}
      {last && <circle className="sparkline__dot" cx={last.x} cy={last.y} r={2} />}
    </svg>
  );
}
