import type { Account, ScanCounts } from '../../api/types';
import { Card, ErrorState, SkeletonRows } from '../../components';
import { PageHeader } from '../../layout/PageHeader';
import { useAccounts, useScanStatuses } from '../accounts/api';
import { NoCloudAccountState } from '../common/NoCloudAccountState';

export function DashboardPage() {
  const accounts = useAccounts();
  return (
    <>
      <PageHeader title="Dashboard" subtitle="Spend, waste and savings opportunities across your clusters." />
      {accounts.isPending && (
        <Card>
          <SkeletonRows rows={3} label="Loading your accounts" />
        </Card>
      )}
      {accounts.isError && (
        <Card>
          <ErrorState error={accounts.error} onRetry={() => void accounts.refetch()} />
        </Card>
      )}
      {accounts.isSuccess &&
        (accounts.data.length === 0 ? (
          <Card>
            <NoCloudAccountState description="Connect an AWS account to see your monthly run rate, bin-packing waste and potential Spot savings." />
          </Card>
        ) : (
          <Inventory accounts={accounts.data} />
        ))}
    </>
  );
}

const TILES: { key: keyof ScanCounts; label: string }[] = [
  { key: 'instances', label: 'EC2 instances' },
  { key: 'clusters', label: 'EKS clusters' },
  { key: 'volumes', label: 'EBS volumes' },
  { key: 'snapshots', label: 'EBS snapshots' },
];

/** Totals of the latest discovery scan across every connected account. */
function Inventory({ accounts }: { accounts: Account[] }) {
  const scans = useScanStatuses(accounts.map((account) => account.id));
  const total = (key: keyof ScanCounts) => scans.reduce((sum, scan) => sum + (scan.data?.counts[key] ?? 0), 0);
  const scanning = accounts.filter((account) => account.status === 'scanning').length;
  const failed = scans.find((scan) => scan.isError);
  const plural = accounts.length === 1 ? '' : 's';
  return (
    <Card title="Discovered inventory">
      <div className="stack">
        <p className="muted" role="status">
          Across {accounts.length} connected account{plural}
          {scanning > 0 && ` · discovery running in ${scanning}`}
        </p>
        {failed?.isError ? (
          <ErrorState error={failed.error} onRetry={() => void failed.refetch()} />
        ) : (
          <dl className="stats">
            {TILES.map(({ key, label }) => (
              <div key={key} className="stat">
                <dt className="stat__label">{label}</dt>
                <dd className="stat__value">{total(key).toLocaleString()}</dd>
              </div>
            ))}
          </dl>
        )}
      </div>
    </Card>
  );
}
