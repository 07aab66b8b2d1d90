import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../../api/client';
import type { components } from '../../../api/schema';

type Schemas = components['schemas'];
export type Operations = Schemas['Operations'];
export type PlatformKpis = Schemas['PlatformKpis'];
export type DecisionFunnel = Schemas['DecisionFunnel'];
export type StageStatus = Schemas['StageStatus'];
export type ReasonCount = Schemas['ReasonCount'];
export type LogLine = Schemas['LogLineView'];
export type StateChange = Schemas['StateChangeView'];
export type ClientInvited = Schemas['ClientInvited'];
export type Profile = Schemas['ProfileView'];

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const operationsKey = (hours: number) => ['admin', 'operations', hours] as const;
export const logsKey = (level: LogLevel) => ['admin', 'logs', level] as const;
export const stateChangesKey = ['admin', 'logs', 'changes'] as const;
export const profileKey = ['profile'] as const;

/** Live operations, refreshed every 15 s while the page is open. */
export function useOperations(hours: number) {
  return useQuery({
    queryKey: operationsKey(hours),
    queryFn: () => unwrap(api.GET('/api/admin/operations', { params: { query: { hours } } })),
    refetchInterval: 15_000,
  });
}

/** The newest lines the server kept, at `level` or above (the live stream adds to them). */
export function useRecentLogs(level: LogLevel) {
  return useQuery({
    queryKey: logsKey(level),
    queryFn: () => unwrap(api.GET('/api/admin/logs', { params: { query: { level, limit: 200 } } })),
  });
}

export function useStateChanges() {
  return useQuery({
    queryKey: stateChangesKey,
    queryFn: () => unwrap(api.GET('/api/admin/logs/changes')),
    refetchInterval: 30_000,
  });
}

export function useInviteClient() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: { name: string; owner_email: string }): Promise<ClientInvited> =>
      unwrap(api.POST('/api/admin/clients/invite', { body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['admin', 'clients'] }),
  });
}

export function useProfile() {
  return useQuery({ queryKey: profileKey, queryFn: () => unwrap(api.GET('/api/auth/profile')) });
}

export function useUpdateProfile() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: { name?: string; email?: string; current_password: string }): Promise<Profile> =>
      unwrap(api.PUT('/api/auth/profile', { body })),
    onSuccess: (profile) => {
      queryClient.setQueryData(profileKey, profile);
      void queryClient.invalidateQueries({ queryKey: ['me'] });
    },
  });
}

export function useChangePassword() {
  return useMutation({
    mutationFn: (body: { current_password: string; new_password: string }) => unwrap(api.POST('/api/auth/password', { body })),
  });
}

/** Human words for a funnel step. */
export const STEP_LABEL: Record<string, string> = {
  pools_scored: 'Pools scored',
  candidates: 'Candidates',
  planned: 'Planned',
  executed: 'Executed',
  failed: 'Failed',
  blocked: 'Blocked',
};

/** Badge tone of a log level. */
export function levelTone(level: string): 'danger' | 'warning' | 'info' | 'neutral' {
  switch (level) {
    case 'ERROR':
      return 'danger';
    case 'WARN':
      return 'warning';
    case 'INFO':
      return 'info';
    default:
      return 'neutral';
  }
}
