import { Link } from 'react-router-dom';
import { EmptyState } from '../../components';

/** Shown wherever data depends on a connected AWS account and none is connected yet. */
export function NoCloudAccountState({ description }: { description: string }) {
  return (
    <EmptyState
      title="No cloud account connected yet"
      description={description}
      action={
        <Link to="/onboarding" className="btn btn--primary">
          Connect AWS Account
        </Link>
      }
    />
  );
}
