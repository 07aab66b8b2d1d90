import { useInfiniteQuery, useMutation } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { toApiError } from '../../api/errors';
import { download } from '../../lib/download';
import type { AuditQuery } from './filters';

export const AUDIT_PAGE_SIZE = 50;

export function useAuditLog(query: AuditQuery) {
  return useInfiniteQuery({
    queryKey: ['audit-logs', query],
    queryFn: ({ pageParam }) =>
      unwrap(api.GET('/api/audit-logs', { params: { query: { ...query, cursor: pageParam, limit: AUDIT_PAGE_SIZE } } })),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (page) => page.next_cursor ?? undefined,
  });
}

export function useVerifyChain() {
  return useMutation({ mutationFn: () => unwrap(api.GET('/api/audit-logs/verify')) });
}

export type ExportFormat = 'csv' | 'json';

export interface ExportResult {
  filename: string;
  bytes: number;
  /** Hex SHA-256 the server computed over the body (X-Content-SHA256). */
  serverChecksum: string | null;
  /** Hex SHA-256 computed here; null where WebCrypto is unavailable (plain-HTTP origins). */
  localChecksum: string | null;
}

async function sha256Hex(blob: Blob): Promise<string | null> {
  if (!globalThis.crypto?.subtle) return null;
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

export function useExportAuditLog() {
  return useMutation({
    mutationFn: async ({ format, from, to }: { format: ExportFormat } & Pick<AuditQuery, 'from' | 'to'>): Promise<ExportResult> => {
      const { data, error, response } = await api.GET('/api/audit-logs/export', {
        params: { query: { format, from, to } },
        parseAs: 'blob',
      });
      if (!response.ok || data === undefined) throw toApiError(response, error);
      const filename = `audit-log-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.${format}`;
      download(data, filename);
      return {
        filename,
        bytes: data.size,
        serverChecksum: response.headers.get('X-Content-SHA256'),
        localChecksum: await sha256Hex(data),
      };
    },
  });
}
