import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { api, unwrap } from '../../api/client';
import { templateEstimateKey, templateKey, templatesKey } from '../../api/keys';
import type { Template, TemplateInput, TemplatePatch, TemplateSpecInput } from '../../api/types';

export function useTemplates() {
  return useQuery({
    queryKey: templatesKey,
    queryFn: async () => (await unwrap(api.GET('/api/templates'))).items,
  });
}

export function useTemplate(id: string | undefined) {
  return useQuery({
    queryKey: templateKey(id ?? ''),
    queryFn: async () => await unwrap(api.GET('/api/templates/{id}', { params: { path: { id: id ?? '' } } })),
    enabled: id !== undefined,
  });
}

/** Every change to one template can change the list (default flag, names, clusters using it). */
function useInvalidateTemplates() {
  const queryClient = useQueryClient();
  return () => queryClient.invalidateQueries({ queryKey: templatesKey });
}

export function useCreateTemplate() {
  const invalidate = useInvalidateTemplates();
  return useMutation({
    mutationFn: async (body: TemplateInput) => await unwrap(api.POST('/api/templates', { body })),
    onSuccess: invalidate,
  });
}

export function useUpdateTemplate(id: string) {
  const queryClient = useQueryClient();
  const invalidate = useInvalidateTemplates();
  return useMutation({
    mutationFn: async (body: TemplatePatch) => await unwrap(api.PATCH('/api/templates/{id}', { params: { path: { id } }, body })),
    onSuccess: async (saved) => {
      queryClient.setQueryData(templateKey(id), saved);
      await invalidate();
    },
  });
}

export function useCloneTemplate() {
  const invalidate = useInvalidateTemplates();
  return useMutation({
    mutationFn: async (template: Template) => await unwrap(api.POST('/api/templates/{id}/clone', { params: { path: { id: template.id } }, body: {} })),
    onSuccess: invalidate,
  });
}

export function useSetDefaultTemplate() {
  const invalidate = useInvalidateTemplates();
  return useMutation({
    mutationFn: async (template: Template) => await unwrap(api.POST('/api/templates/{id}/default', { params: { path: { id: template.id } } })),
    onSuccess: invalidate,
  });
}

export function useDeleteTemplate() {
  const invalidate = useInvalidateTemplates();
  return useMutation({
    mutationFn: async (template: Template) => await unwrap(api.DELETE('/api/templates/{id}', { params: { path: { id: template.id } } })),
    onSuccess: invalidate,
  });
}

/** `value`, once it has stayed the same for `ms`. */
export function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/** Debounce of the live estimate: one request once the user pauses typing. */
export const ESTIMATE_DEBOUNCE_MS = 400;

/**
 * What nodes of the draft spec cost now, re-asked ~400 ms after the draft stops changing.
 * Nothing is asked without a family (the server would refuse the spec).
 */
export function useTemplateEstimate(spec: TemplateSpecInput) {
  const key = useDebounced(JSON.stringify(spec), ESTIMATE_DEBOUNCE_MS);
  const settled = JSON.parse(key) as TemplateSpecInput;
  return useQuery({
    queryKey: templateEstimateKey(key),
    queryFn: async () => await unwrap(api.POST('/api/templates/estimate', { body: settled })),
    enabled: (settled.families?.length ?? 0) > 0,
    // Keep the last numbers on screen while the next ones load.
    placeholderData: keepPreviousData,
    staleTime: 60_000,
  });
}

/** Security groups of a linked account (the first one when `accountId` is empty), read live. */
export function useSecurityGroups(accountId: string) {
  return useQuery({
    queryKey: ['templates', 'security-groups', accountId] as const,
    queryFn: async () =>
      await unwrap(api.GET('/api/templates/security-groups', { params: { query: accountId ? { account_id: accountId } : {} } })),
    staleTime: 60_000,
    retry: false,
  });
}
