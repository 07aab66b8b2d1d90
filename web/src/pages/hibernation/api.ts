import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import type { components } from '../../api/schema';

type Schemas = components['schemas'];
export type HibernationSchedule = Schemas['HibernationSchedule'];
export type HibernationScheduleInput = Schemas['HibernationScheduleInput'];
export type HibernationStatus = Schemas['HibernationStatus'];
export type DateOverride = Schemas['DateOverride'];

/** A cluster's hibernation schedule and state (the state under the schedule's key). */
export const hibernationKey = (clusterId: string) => ['hibernation', clusterId] as const;
const stateKey = (clusterId: string) => [...hibernationKey(clusterId), 'state'] as const;

export function useHibernationSchedule(clusterId: string | undefined) {
  return useQuery({
    queryKey: hibernationKey(clusterId ?? ''),
    enabled: Boolean(clusterId),
    queryFn: () => unwrap(api.GET('/api/clusters/{id}/hibernation', { params: { path: { id: clusterId ?? '' } } })),
  });
}

export function useHibernationState(clusterId: string | undefined) {
  return useQuery({
    queryKey: stateKey(clusterId ?? ''),
    enabled: Boolean(clusterId),
    // The state and the savings ticker move on their own (timer transitions).
    refetchInterval: 30_000,
    queryFn: () => unwrap(api.GET('/api/clusters/{id}/hibernation/state', { params: { path: { id: clusterId ?? '' } } })),
  });
}

export function useSaveSchedule(clusterId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: HibernationScheduleInput) =>
      unwrap(api.PUT('/api/clusters/{id}/hibernation', { params: { path: { id: clusterId } }, body })),
    onSuccess: (saved) => {
      queryClient.setQueryData(hibernationKey(clusterId), saved);
      void queryClient.invalidateQueries({ queryKey: stateKey(clusterId) });
    },
  });
}

export type ManualAction = { kind: 'sleep' | 'wake'; hours?: number } | { kind: 'resume' };

export function useManual(clusterId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (action: ManualAction) => {
      const params = { params: { path: { id: clusterId } } };
      switch (action.kind) {
        case 'sleep':
          return unwrap(api.POST('/api/clusters/{id}/hibernation/sleep', { ...params, body: { hours: action.hours } }));
        case 'wake':
          return unwrap(api.POST('/api/clusters/{id}/hibernation/wake', { ...params, body: { hours: action.hours } }));
        case 'resume':
          return unwrap(api.POST('/api/clusters/{id}/hibernation/resume', params));
      }
    },
    onSuccess: (state) => {
      queryClient.setQueryData(stateKey(clusterId), state);
      // The schedule (its manual override) only; the state was just answered.
      void queryClient.invalidateQueries({ queryKey: hibernationKey(clusterId), exact: true });
    },
  });
}

export type HolidayCountryList = Schemas['HolidayCountryList'];
export type NationalHolidayList = Schemas['NationalHolidayList'];

/** Countries whose national holidays can be imported (static on the server). */
export function useHolidayCountries() {
  return useQuery({
    queryKey: ['holidays', 'countries'] as const,
    staleTime: Infinity,
    queryFn: () => unwrap(api.GET('/api/holidays/countries')),
  });
}

/** Fetches a country's national holidays for one year (the one-click import). */
export function useImportHolidays() {
  return useMutation({
    mutationFn: ({ country, year }: { country: string; year: number }) =>
      unwrap(api.GET('/api/holidays', { params: { query: { country, year: String(year) } } })),
  });
}

/** `current` with the imported dates added (no duplicates, sorted), and how many were new. */
export function mergeHolidays(current: string[], imported: string[]): { holidays: string[]; added: number } {
  const set = new Set(current);
  let added = 0;
  for (const d of imported) {
    if (!set.has(d)) {
      set.add(d);
      added += 1;
    }
  }
  return { holidays: Array.from(set).sort(), added };
}
