import { Outlet } from 'react-router-dom';
import { useMeQuery } from '../auth/hooks';
import { MeContext } from '../auth/MeContext';
import { ErrorState, Skeleton, SkeletonRows } from '../components';
import { useLiveEvents } from '../live/useLiveEvents';
import { ImpersonationBanner } from './ImpersonationBanner';
import { Sidebar } from './Sidebar';
import { UserMenu } from './UserMenu';

export function AppShell() {
  const me = useMeQuery();
  useLiveEvents();
  return (
    <div className="shell">
      <Sidebar />
      <div className={me.data?.impersonated_by ? 'main main--impersonating' : 'main'}>
        {me.isSuccess && <ImpersonationBanner me={me.data} />}
        <header className="topbar">
          {me.isSuccess ? <span className="topbar__org">{me.data.organization.name}</span> : <Skeleton width={160} />}
          {me.isSuccess && <UserMenu me={me.data} />}
        </header>
        <main className="content" id="content">
          {me.isPending && <SkeletonRows label="Loading your workspace" />}
          {me.isError && <ErrorState error={me.error} onRetry={() => void me.refetch()} />}
          {me.isSuccess && (
            <MeContext.Provider value={me.data}>
              <Outlet />
            </MeContext.Provider>
          )}
        </main>
      </div>
    </div>
  );
}
