import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useNavigate } from 'react-router-dom';
import { api, unwrap } from '../api/client';
import type { Me } from '../api/types';
import { endImpersonation } from '../auth/impersonation';
import { Button } from '../components';
import { CLIENTS_PATH } from '../pages/admin/clients/ClientsPage';

/**
 * Sticky warning on every page while a platform admin acts as a client: who is acting as
 * whom, and a way out. Ending revokes the impersonation and resumes the admin's session.
 */
export function ImpersonationBanner({ me }: { me: Me }) {
  const impersonation = useQuery({
    queryKey: ['admin', 'impersonation', me.user.id],
    queryFn: () => unwrap(api.GET('/api/admin/impersonation')),
    enabled: Boolean(me.impersonated_by),
  });
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [ending, setEnding] = useState(false);
  if (!me.impersonated_by) return null;
  const admin = impersonation.data?.admin_email ?? me.impersonated_by;
  const end = async () => {
    setEnding(true);
    const resumed = await endImpersonation();
    // Everything cached belongs to the client; `reset` also refetches `me` for the shell.
    await queryClient.resetQueries();
    if (resumed) navigate(CLIENTS_PATH, { replace: true });
  };
  return (
    <div className="impersonation-banner" role="region" aria-label="Impersonation">
      <span>
        ⚠ You are viewing <strong>{me.organization.name}</strong> as <strong>{admin}</strong>
        {impersonation.data && <span className="impersonation-banner__meta"> (acting as owner {impersonation.data.as_email})</span>}
      </span>
      <Button size="sm" variant="danger" loading={ending} onClick={() => void end()}>
        End impersonation
      </Button>
    </div>
  );
}
