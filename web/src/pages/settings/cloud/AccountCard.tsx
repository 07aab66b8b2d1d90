import type { Account } from '../../../api/types';
import { Badge, Button, ErrorState } from '../../../components';
import { formatDateTime } from '../../../lib/format';
import { useScanStatus } from '../../accounts/api';
import { accountStatus, methodLabel } from '../../accounts/format';
import { ScanProgress } from '../../accounts/ScanProgress';

interface AccountCardProps {
  account: Account;
  /** Omitted for viewers: the card then has no mutating controls. */
  actions?: {
    onResync: () => void;
    resyncing: boolean;
    onRename: () => void;
    onDisconnect: () => void;
  };
}

export function AccountCard({ account, actions }: AccountCardProps) {
  const status = accountStatus(account.status);
  const headingId = `account-${account.id}`;
  return (
    <article className="card account-card" aria-labelledby={headingId}>
      <header className="account-card__header">
        <div>
          <h3 id={headingId}>{account.name}</h3>
          <span className="mono muted nowrap">{account.aws_account_id_masked}</span>
        </div>
        <div className="row row--wrap">
          {account.provider === 'sim' && <Badge>Simulator</Badge>}
          {account.method != null && <Badge tone="info">{methodLabel(account.method)}</Badge>}
          <Badge tone={status.tone}>{status.label}</Badge>
        </div>
      </header>
      <dl className="details account-card__details">
        <dt>Region</dt>
        <dd>{account.region ?? '—'}</dd>
        <dt>Last sync</dt>
        <dd>{account.last_sync_at != null ? formatDateTime(account.last_sync_at) : 'Never'}</dd>
        <dt>Added</dt>
        <dd>{formatDateTime(account.created_at)}</dd>
      </dl>
      {account.status === 'scanning' && <LiveScan accountId={account.id} />}
      {account.status === 'error' && account.status_message != null && (
        <div className="callout callout--danger">
          <span className="callout__title">Last scan failed</span>
          <span>{account.status_message}</span>
        </div>
      )}
      {actions && (
        <footer className="account-card__actions">
          <Button size="sm" loading={actions.resyncing} disabled={account.status === 'scanning'} onClick={actions.onResync}>
            Re-sync
          </Button>
          <Button size="sm" variant="ghost" onClick={actions.onRename} aria-label={`Rename ${account.name}`}>
            Rename
          </Button>
          <Button size="sm" variant="ghost" className="btn--danger-text" onClick={actions.onDisconnect} aria-label={`Disconnect ${account.name}`}>
            Disconnect
          </Button>
        </footer>
      )}
    </article>
  );
}

function LiveScan({ accountId }: { accountId: string }) {
  const scan = useScanStatus(accountId);
  if (scan.isError) return <ErrorState error={scan.error} title="Could not load scan progress" onRetry={() => void scan.refetch()} />;
  return scan.isSuccess ? <ScanProgress scan={scan.data} /> : null;
}
