import { Badge, Gauge } from '../../components';
import { gradeTone, healthTone } from './format';

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
