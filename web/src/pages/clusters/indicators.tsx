import { Badge, Gauge } from '../../components';
import { formatPercent } from '../../lib/format';
import { bandTone, gradeTone, healthTone } from './format';

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
