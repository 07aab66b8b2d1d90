import type { ClusterSummary } from '../../api/types';
import { Badge, Gauge, Sparkline } from '../../components';
import { formatPercent, formatUsd } from '../../lib/format';
import { bandTone, costTrend, gradeTone, healthTone } from './format';

export function GradeBadge({ grade }: { grade: string | null | undefined }) {
  if (grade == null) {
    return (
      <span className="muted" title="No pod data from this cluster yet">
        —<span className="sr-only">Not graded</span>
      </span>
    );
  }
  return (
    <Badge tone={gradeTone(grade)}>
      <span className="sr-only">Efficiency grade </span>
      {grade}
    </Badge>
  );
}

export function HealthGauge({ score, size }: { score: number; size?: number }) {
  return <Gauge label={`Health ${score} of 100`} value={score} tone={healthTone(score)} size={size} />;
}

export function EolBadge() {
  return (
    <span title="Past EKS standard support: upgrade the control plane">
      <Badge tone="danger">EOL</Badge>
    </span>
  );
}

/**
 * Spot interruption risk: the band (SAFE / CAUTION / AVOID) and, when the pool has been scored,
 * the model's probability of an interruption within the hour.
 */
export function RiskBadge({ band, probability, model }: { band: string; probability?: number | null; model?: string | null }) {
  const percent = probability != null ? formatRiskPercent(probability) : null;
  const title = [
    percent !== null ? `Interruption probability within the hour: ${percent}` : 'Not scored by the risk model: band from the price ratio',
    model ? `model ${model}` : null,
  ]
    .filter(Boolean)
    .join(' · ');
  return (
    <span title={title} className="risk">
      <Badge tone={bandTone(band)}>
        <span className="sr-only">Interruption risk </span>
        {band}
        {percent !== null && <span className="risk__pct"> {percent}</span>}
      </Badge>
    </span>
  );
}

/** Probabilities under 1% keep a decimal so a scored pool never reads "0%". */
export function formatRiskPercent(probability: number): string {
  return probability > 0 && probability < 0.01 ? `${(probability * 100).toFixed(1)}%` : formatPercent(probability);
}

const TREND_ARROW = { down: '▼', up: '▲' } as const;

/**
 * The monthly run rate's change over the last 24 hours: ▼ green when cheaper, ▲ red when more
 * expensive, neutral when flat or when there is not enough history yet.
 */
export function CostTrend({ trend }: { trend: ClusterSummary['trend_24h'] | undefined }) {
  const { direction, percent } = costTrend(trend?.monthly_cost_change);
  const costs = trend?.monthly_cost ?? [];
  const first = costs[0];
  const last = costs[costs.length - 1];
  const title =
    direction === 'none'
      ? 'Not enough history for a 24-hour trend yet'
      : `Monthly run rate over the last 24 hours${first !== undefined && last !== undefined ? `: ${formatUsd(first)} → ${formatUsd(last)}` : ''}`;
  const spoken = {
    down: `down ${percent}, cheaper`,
    up: `up ${percent}, more expensive`,
    flat: 'unchanged',
    none: 'not enough history',
  }[direction];
  return (
    <span className={`trend trend--${direction}`} title={title}>
      <span aria-hidden="true">
        {direction === 'none' ? '—' : direction === 'flat' ? `±${percent}` : `${TREND_ARROW[direction]}\u00a0${percent}`}
      </span>
      <span className="sr-only">24-hour cost trend: {spoken}</span>
    </span>
  );
}

/** Hourly counts of the last 24 hours as a sparkline (nodes or pods). */
export function CountSparkline({ values, noun, width, height }: { values: number[] | undefined; noun: string; width?: number; height?: number }) {
  return <Sparkline values={values ?? []} label={`${noun}, last 24 hours`} width={width} height={height} />;
}
