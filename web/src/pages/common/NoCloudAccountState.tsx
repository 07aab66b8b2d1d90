import { Link } from 'react-router-dom';
import { canManageOrg, useMe } from '../../auth/MeContext';
import { EmptyState } from '../../components';
import { CONNECT_ACCOUNT_PATH } from '../accounts/format';

/** Shown wherever data depends on a connected AWS account and none is connected yet. */
export function NoCloudAccountState({ description }: { description: string }) {
  const canConnect = canManageOrg(useMe());
  return (
    <EmptyState
      title="No cloud account connected yet"
      description={canConnect ? description : `${description} Ask an owner or admin of your organization to connect one.`}
      action={
        canConnect && (
          <Link to={CONNECT_ACCOUNT_PATH} className="btn btn--primary">
            Connect AWS account
          </Link>
        )
      }
    />
  );
}
