import type { VerifyResult } from '../../api/types';
import { formatDateTime } from '../../lib/format';

/** Outcome of GET /api/audit-logs/verify. */
export function ChainStatus({ result }: { result: VerifyResult }) {
  if (result.ok) {
    return (
      <div className="callout callout--success" role="status">
        <span className="callout__title">Audit chain intact</span>
        <span>{result.checked.toLocaleString()} entries checked; every hash links to its predecessor.</span>
      </div>
    );
  }
  const broken = result.first_broken;
  return (
    <div className="callout callout--danger" role="alert">
      <span className="callout__title">Audit chain broken</span>
      <span>
        {result.checked.toLocaleString()} entries checked.
        {broken && (
          <>
            {' '}
            First break at entry #{broken.seq} <span className="mono">{broken.id}</span>
            {broken.timestamp != null && ` (${formatDateTime(broken.timestamp)})`}: {broken.reason}
          </>
        )}
      </span>
    </div>
  );
}
