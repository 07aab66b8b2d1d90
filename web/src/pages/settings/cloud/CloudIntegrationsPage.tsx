import { useState } from 'react';
import { Link } from 'react-router-dom';
import { errorMessage } from '../../../api/errors';
import type { Account } from '../../../api/types';
import { canManageOrg, useMe } from '../../../auth/MeContext';
import { Button, Card, ErrorState, Modal, SkeletonRows, useToast } from '../../../components';
import { PageHeader } from '../../../layout/PageHeader';
import { useAccounts, useDisconnectAccount, useResyncAccount } from '../../accounts/api';
import { CONNECT_ACCOUNT_PATH } from '../../accounts/format';
import { NoCloudAccountState } from '../../common/NoCloudAccountState';
import { AccountCard } from './AccountCard';
import { RenameAccountModal } from './RenameAccountModal';

export function CloudIntegrationsPage() {
  const canManage = canManageOrg(useMe());
  const accounts = useAccounts();
  const resync = useResyncAccount();
  const disconnect = useDisconnectAccount();
  const toast = useToast();
  const [renaming, setRenaming] = useState<Account | null>(null);
  const [disconnecting, setDisconnecting] = useState<Account | null>(null);

  const startResync = (account: Account) =>
    resync.mutate(account.id, {
      onSuccess: () => toast.info(`Re-scanning ${account.name}.`),
      onError: (error) => toast.error(errorMessage(error)),
    });

  const confirmDisconnect = () => {
    if (disconnecting === null) return;
    disconnect.mutate(disconnecting.id, {
      onSuccess: () => {
        toast.success(`${disconnecting.name} was disconnected.`);
        setDisconnecting(null);
      },
      onError: (error) => toast.error(errorMessage(error)),
    });
  };

  return (
    <>
      <PageHeader
        title="Cloud integrations"
        subtitle="AWS accounts linked to your organization."
        actions={
          canManage && accounts.isSuccess && accounts.data.length > 0 ? (
            <Link to={CONNECT_ACCOUNT_PATH} className="btn btn--primary">
              Connect another account
            </Link>
          ) : undefined
        }
      />
      {accounts.isPending && (
        <Card>
          <SkeletonRows rows={4} label="Loading cloud accounts" />
        </Card>
      )}
      {accounts.isError && (
        <Card>
          <ErrorState error={accounts.error} title="Could not load cloud accounts" onRetry={() => void accounts.refetch()} />
        </Card>
      )}
      {accounts.isSuccess &&
        (accounts.data.length === 0 ? (
          <Card>
            <NoCloudAccountState description="Link an AWS account with a read-only IAM role to start discovering your fleet." />
          </Card>
        ) : (
          <ul className="account-grid" aria-label="Cloud accounts">
            {accounts.data.map((account) => (
              <li key={account.id}>
                <AccountCard
                  account={account}
                  actions={
                    canManage
                      ? {
                          onResync: () => startResync(account),
                          resyncing: resync.isPending && resync.variables === account.id,
                          onRename: () => setRenaming(account),
                          onDisconnect: () => setDisconnecting(account),
                        }
                      : undefined
                  }
                />
              </li>
            ))}
          </ul>
        ))}
      {renaming !== null && <RenameAccountModal account={renaming} onClose={() => setRenaming(null)} />}
      <Modal
        open={disconnecting !== null}
        onClose={() => setDisconnecting(null)}
        title="Disconnect account?"
        description={disconnecting ? `${disconnecting.name} (${disconnecting.aws_account_id_masked ?? ''}) will stop being scanned.` : undefined}
        footer={
          <>
            <Button variant="ghost" onClick={() => setDisconnecting(null)}>
              Cancel
            </Button>
            <Button variant="danger" loading={disconnect.isPending} onClick={confirmDisconnect}>
              Disconnect
            </Button>
          </>
        }
      >
        <p className="muted">
          Its stored credentials are erased and its inventory is hidden. The audit history stays. Delete the CloudFormation stack or
          access keys in AWS to revoke access on your side too.
        </p>
      </Modal>
    </>
  );
}
