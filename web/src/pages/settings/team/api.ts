import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../../api/client';
import type { InviteRole, Role } from '../../../api/types';

const membersKey = ['org', 'members'] as const;
const invitesKey = ['org', 'invites'] as const;

export function useMembers() {
  return useQuery({
    queryKey: membersKey,
    queryFn: async () => (await unwrap(api.GET('/api/org/members'))).items,
  });
}

export function useInvites(enabled: boolean) {
  return useQuery({
    queryKey: invitesKey,
    queryFn: async () => (await unwrap(api.GET('/api/org/invites'))).items,
    enabled,
  });
}

export function useUpdateMemberRole() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ userId, role }: { userId: string; role: Role }) =>
      unwrap(api.PATCH('/api/org/members/{user_id}', { params: { path: { user_id: userId } }, body: { role } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: membersKey }),
  });
}

export function useRemoveMember() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (userId: string) =>
      unwrap(api.DELETE('/api/org/members/{user_id}', { params: { path: { user_id: userId } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: membersKey }),
  });
}

export function useCreateInvite() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: { email: string; role: InviteRole }) => unwrap(api.POST('/api/org/invites', { body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: invitesKey }),
  });
}

export function useRevokeInvite() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE('/api/org/invites/{id}', { params: { path: { id } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: invitesKey }),
  });
}
