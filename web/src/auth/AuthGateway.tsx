import { Navigate } from 'react-router-dom';
import { ErrorState } from '../components';
import { useMeQuery } from './hooks';

/** Decides where a signed-in user starts: the onboarding flow or the dashboard. */
export function AuthGateway() {
  const me = useMeQuery();
  if (me.isPending) {
    return (
      <div className="centered" role="status" aria-label="Loading your workspace">
        <span className="spinner" aria-hidden="true" />
      </div>
    );
  }
  if (me.isError) {
    return (
      <div className="centered">
        <ErrorState error={me.error} title="Could not load your workspace" onRetry={() => void me.refetch()} />
      </div>
    );
  }
  return <Navigate to={me.data.route === 'onboarding' ? '/onboarding' : '/dashboard'} replace />;
}
