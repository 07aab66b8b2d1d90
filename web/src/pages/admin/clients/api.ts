import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../../api/client';
import type { Client, ClientCreated } from '../../../api/types';
import type { BadgeTone } from '../../../components';

export const clientsKey = (includeDeleted: boolean) => ['admin', 'clients', includeDeleted] as const;

export function useClients(includeDeleted: boolean) {
  return useQuery({
    queryKey: clientsKey(includeDeleted),
    queryFn: () => unwrap(api.GET('/api/admin/clients', { params: { query: { include_deleted: includeDeleted } } })),
  });
}

function useClientMutation<V, R>(call: (variables: V) => Promise<R>) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: call,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['admin', 'clients'] }),
  });
}

export function useCreateClient() {
  return useClientMutation(
    (body: { name: string; owner_email: string }): Promise<ClientCreated> => unwrap(api.POST('/api/admin/clients', { body })),
  );
}

export type ClientAction = 'block' | 'unblock' | 'delete' | 'restore';

export function useClientAction() {
  return useClientMutation(({ action, id, reason }: { action: ClientAction; id: string; reason?: string }): Promise<Client> => {
    const path = { params: { path: { id } } };
    switch (action) {
      case 'block':
        return unwrap(api.POST('/api/admin/clients/{id}/block', { ...path, body: reason ? { reason } : {} }));
      case 'unblock':
        return unwrap(api.POST('/api/admin/clients/{id}/unblock', path));
      case 'delete':
        return unwrap(api.DELETE('/api/admin/clients/{id}', path));
      case 'restore':
        return unwrap(api.POST('/api/admin/clients/{id}/restore', path));
    }
  });
}

export function useImpersonate() {
  return useMutation({
    mutationFn: (organizationId: string) =>
      unwrap(api.POST('/api/admin/impersonate', { body: { organization_id: organizationId } })),
  });
}

export function clientStatus(status: string): { label: string; tone: BadgeTone } {
  switch (status) {
    case 'active':
      return { label: 'Active', tone: 'success' };
    case 'blocked':
      return { label: 'Blocked', tone: 'danger' };
    case 'deleted':
      return { label: 'Deleted', tone: 'neutral' };
    default:
      return { label: status, tone: 'neutral' };
  }
}

/** Connected agents out of the organization's clusters, as a badge. */
export function agentHealth(client: Pick<Client, 'agents_connected' | 'clusters'>): { label: string; tone: BadgeTone } {
  const label = `${client.agents_connected} / ${client.clusters}`;
  if (client.clusters === 0) return { label, tone: 'neutral' };
  if (client.agents_connected === client.clusters) return { label, tone: 'success' };
  return { label, tone: client.agents_connected === 0 ? 'danger' : 'warning' };
}
