import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../../api/client';
import type { components } from '../../../api/schema';

type Schemas = components['schemas'];
export type NotificationSettings = Schemas['NotificationSettings'];
export type NotificationSettingsInput = Schemas['NotificationSettingsInput'];
export type NotificationView = Schemas['NotificationView'];
export type DeliveryAttempt = Schemas['DeliveryAttempt'];

const settingsKey = ['notifications', 'settings'] as const;
const deliveriesKey = ['notifications', 'deliveries'] as const;

export function useNotificationSettings() {
  return useQuery({ queryKey: settingsKey, queryFn: () => unwrap(api.GET('/api/org/notifications')) });
}

export function useSaveNotificationSettings() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: NotificationSettingsInput) => unwrap(api.PUT('/api/org/notifications', { body })),
    onSuccess: (saved) => queryClient.setQueryData(settingsKey, saved),
  });
}

/** Notifications with their delivery attempts; refreshed while any is still on its way. */
export function useDeliveries() {
  return useQuery({
    queryKey: deliveriesKey,
    queryFn: () => unwrap(api.GET('/api/org/notifications/deliveries', { params: { query: { limit: 25 } } })),
    refetchInterval: (query) =>
      query.state.data?.items.some((n) => n.status === 'pending' || n.status === 'sending') ? 1500 : 15_000,
  });
}

export function useSendTest() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => unwrap(api.POST('/api/org/notifications/test')),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: deliveriesKey }),
  });
}
