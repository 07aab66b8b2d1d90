import type { ScanStatus } from '../../api/types';
import { phaseLabel } from './format';

const COUNT_LABELS = [
  ['instances', 'EC2 instances'],
  ['clusters', 'EKS clusters'],
  ['volumes', 'EBS volumes'],
  ['snapshots', 'Snapshots'],
] as const;

/** Progress bar, phase and discovered counts of one account scan. */
export function ScanProgress({ scan }: { scan: ScanStatus }) {
  const failed = scan.status === 'error';
  const phase = failed ? 'Scan failed' : phaseLabel(scan.phase);
  return (
    <div className="scan">
      <div className="row row--between">
        {/* Announced politely: the phase changes a handful of times per scan. */}
        <span role="status" className="scan__phase">
          {phase}
          <span className="sr-only">, {scan.progress}% complete</span>
        </span>
        <span className="muted" aria-hidden="true">
          {scan.progress}%
        </span>
      </div>
      <progress className={failed ? 'progress progress--error' : 'progress'} max={100} value={scan.progress} aria-label="Scan progress" />
      {failed && scan.message != null && (
        <div className="callout callout--danger" role="alert">
          {scan.message}
        </div>
      )}
      <dl className="scan__counts">
        {COUNT_LABELS.map(([key, label]) => (
          <div key={key} className="scan__count">
            <dt>{label}</dt>
            <dd>{scan.counts[key].toLocaleString()}</dd>
          </div>
        ))}
      </dl>
    </div>
  );
}
