import { queryOptions, useMutation, useQueries, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { accountsKey, scanKey } from '../../api/keys';
import type { Account, KeysRequest, ScanStatus, VerifyRequest } from '../../api/types';
import { useLiveConnected } from '../../live/useLiveEvents';
import { isLinked } from './format';

/**
 * How often live views re-read while a scan runs. Only while the live event stream is down:
 * when it is connected, its events update these queries instead.
 */
const SCAN_POLL_MS = 1000;

const isScanning = (account: Account) => account.status === 'scanning';

/** Linked accounts (the server's `pending` placeholder is not a linked account and is dropped). */
export function useAccounts() {
  const live = useLiveConnected();
  return useQuery({
    queryKey: accountsKey,
    queryFn: async () => (await unwrap(api.GET('/api/accounts'))).items.filter(isLinked),
    refetchInterval: (query) => (!live && query.state.data?.some(isScanning) ? SCAN_POLL_MS : false),
  });
}

/** Progress of one account's scan; without live events, polls until the scan ends or the read fails. */
function scanQuery(accountId: string, live: boolean) {
  return queryOptions({
    queryKey: scanKey(accountId),
    queryFn: () => unwrap(api.GET('/api/accounts/{id}/scan', { params: { path: { id: accountId } } })),
    refetchInterval: (query) => (live || query.state.status === 'error' || isScanFinished(query.state.data) ? false : SCAN_POLL_MS),
    staleTime: 0,
  });
}

export function useScanStatus(accountId: string) {
  return useQuery(scanQuery(accountId, useLiveConnected()));
}

/** Scan results of several accounts (the dashboard's inventory totals). */
export function useScanStatuses(accountIds: string[]) {
  const live = useLiveConnected();
  return useQueries({ queries: accountIds.map((id) => scanQuery(id, live)) });
}

function isScanFinished(scan: ScanStatus | undefined): boolean {
  return scan !== undefined && (scan.status === 'active' || scan.status === 'error');
}

/**
 * The organization's external ID and CloudFormation template. POST because the server creates
 * the external ID on first use; it is stable afterwards, so one call per wizard visit suffices.
 */
export function useLinkInfo() {
  return useQuery({
    queryKey: ['account-link'],
    queryFn: () => unwrap(api.POST('/api/accounts/link', { body: {} })),
    staleTime: Infinity,
  });
}

function useAccountMutation<TVariables, TData>(mutationFn: (variables: TVariables) => Promise<TData>) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: accountsKey }),
  });
}

export function useVerifyRole() {
  return useAccountMutation((body: VerifyRequest) => unwrap(api.POST('/api/accounts/verify', { body })));
}

export function useLinkWithKeys() {
  return useAccountMutation((body: KeysRequest) => unwrap(api.POST('/api/accounts/keys', { body })));
}

export function useRenameAccount() {
  return useAccountMutation(({ id, name }: { id: string; name: string }) =>
    unwrap(api.PATCH('/api/accounts/{id}', { params: { path: { id } }, body: { name } })),
  );
}

export function useResyncAccount() {
  return useAccountMutation((id: string) => unwrap(api.POST('/api/accounts/{id}/resync', { params: { path: { id } } })));
}

export function useDisconnectAccount() {
  return useAccountMutation((id: string) => unwrap(api.DELETE('/api/accounts/{id}', { params: { path: { id } } })));
}
