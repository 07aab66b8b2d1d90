import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import type { components } from '../../api/schema';

type Schemas = components['schemas'];
export type ReportSummary = Schemas['ReportSummary'];
export type WeeklyReport = Schemas['WeeklyReport'];
export type ReportFigures = Schemas['ReportFigures'];

const reportsKey = ['reports'] as const;

export function useReports() {
  return useQuery({ queryKey: reportsKey, queryFn: () => unwrap(api.GET('/api/reports')) });
}

export function useReport(id: string | undefined) {
  return useQuery({
    queryKey: [...reportsKey, id ?? ''] as const,
    enabled: Boolean(id),
    queryFn: () => unwrap(api.GET('/api/reports/{id}', { params: { path: { id: id ?? '' } } })),
    // Follow the delivery until it is closed.
    refetchInterval: (query) => {
      const status = query.state.data?.delivery_status;
      return status === 'pending' || status === 'sending' ? 1500 : false;
    },
  });
}

export function useRunReport() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => unwrap(api.POST('/api/reports')),
    onSuccess: (report) => {
      queryClient.setQueryData([...reportsKey, report.id], report);
      void queryClient.invalidateQueries({ queryKey: reportsKey, exact: true });
    },
  });
}
