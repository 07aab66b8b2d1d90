import type { Account } from '../../api/types';
import { Button, ErrorState, SkeletonRows } from '../../components';
import { useScanStatus } from '../accounts/api';
import { ScanProgress } from '../accounts/ScanProgress';

interface ScanStepProps {
  account: Account;
  finishLabel: string;
  finishing: boolean;
  onFinish: () => void;
  onRetry: () => void;
}

/** Success screen: the account is linked; follow its first discovery scan live. */
export function ScanStep({ account, finishLabel, finishing, onFinish, onRetry }: ScanStepProps) {
  const scan = useScanStatus(account.id);
  const status = scan.data?.status;
  return (
    <div className="stack">
      <div>
        <h2>{status === 'error' ? `${account.name} is connected, but the scan failed` : `${account.name} is connected`}</h2>
        <p className="muted">
          {status === 'active'
            ? 'Discovery finished. Your inventory is ready.'
            : 'We are discovering your inventory. You can leave this page; the scan continues in the background.'}
        </p>
      </div>
      {scan.isPending && <SkeletonRows rows={2} label="Loading scan progress" />}
      {scan.isError && <ErrorState error={scan.error} title="Could not load scan progress" onRetry={() => void scan.refetch()} />}
      {scan.isSuccess && <ScanProgress scan={scan.data} />}
      <div className="row row--end">
        {status === 'error' && <Button onClick={onRetry}>Change connection details</Button>}
        <Button variant="primary" loading={finishing} onClick={onFinish}>
          {finishLabel}
        </Button>
      </div>
    </div>
  );
}
