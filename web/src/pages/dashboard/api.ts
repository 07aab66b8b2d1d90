import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { dashboardKey } from '../../api/keys';

/**
 * Dashboard numbers are re-read this often while the page is open; on top of that, live
 * discovery events invalidate them (their keys sit under the inventory prefix, see keys.ts).
 */
export const DASHBOARD_REFRESH_MS = 60_000;

/** Chart windows the page offers, in days (the server accepts 1–90). */
export const RANGES = [1, 7, 14] as const;
export type RangeDays = (typeof RANGES)[number];
export const DEFAULT_RANGE: RangeDays = 7;

/** The selected account, or undefined for every account of the organization. */
export type Scope = string | undefined;

const options = {
  refetchInterval: DASHBOARD_REFRESH_MS,
  // Switching accounts or ranges keeps the old chart on screen until the new one arrives.
  placeholderData: keepPreviousData,
} as const;

export function useKpis(account: Scope) {
  return useQuery({
    ...options,
    queryKey: [...dashboardKey, 'kpis', account ?? null],
    queryFn: () => unwrap(api.GET('/api/dashboard/kpis', { params: { query: { account_id: account } } })),
  });
}

export function useSavingsSeries(account: Scope, days: number) {
  return useQuery({
    ...options,
    queryKey: [...dashboardKey, 'savings', account ?? null, days],
    queryFn: () => unwrap(api.GET('/api/dashboard/savings', { params: { query: { account_id: account, days } } })),
  });
}

export function useResourceGap(account: Scope, days: number) {
  return useQuery({
    ...options,
    queryKey: [...dashboardKey, 'resource-gap', account ?? null, days],
    queryFn: () => unwrap(api.GET('/api/dashboard/resource-gap', { params: { query: { account_id: account, days } } })),
  });
}

export function useFleet(account: Scope) {
  return useQuery({
    ...options,
    queryKey: [...dashboardKey, 'fleet', account ?? null],
    queryFn: () => unwrap(api.GET('/api/dashboard/fleet', { params: { query: { account_id: account } } })),
  });
}

/** The heatmap always covers the server's default window (four weeks of hours-of-the-week). */
export function useHeatmap(account: Scope) {
  return useQuery({
    ...options,
    queryKey: [...dashboardKey, 'heatmap', account ?? null],
    queryFn: () => unwrap(api.GET('/api/dashboard/heatmap', { params: { query: { account_id: account } } })),
  });
}

export function useStability(account: Scope) {
  return useQuery({
    ...options,
    queryKey: [...dashboardKey, 'stability', account ?? null],
    queryFn: () => unwrap(api.GET('/api/dashboard/stability', { params: { query: { account_id: account } } })),
  });
}
