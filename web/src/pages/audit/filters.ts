import type { AuditOutcome } from '../../api/types';

export type TimeRange = '24h' | '7d' | '30d' | '90d' | 'all' | 'custom';

export const TIME_RANGES: { value: TimeRange; label: string }[] = [
  { value: '24h', label: 'Last 24 hours' },
  { value: '7d', label: 'Last 7 days' },
  { value: '30d', label: 'Last 30 days' },
  { value: '90d', label: 'Last 90 days' },
  { value: 'all', label: 'All time' },
  { value: 'custom', label: 'Custom range' },
];

const RANGE_HOURS: Record<Exclude<TimeRange, 'all' | 'custom'>, number> = { '24h': 24, '7d': 168, '30d': 720, '90d': 2160 };

/** What the user edits in the filter bar. Custom bounds are `datetime-local` strings (local time). */
export interface FilterDraft {
  outcome: AuditOutcome | '';
  action: string;
  actor: string;
  range: TimeRange;
  customFrom: string;
  customTo: string;
}

export const DEFAULT_DRAFT: FilterDraft = { outcome: '', action: '', actor: '', range: '7d', customFrom: '', customTo: '' };

/** Query parameters sent to GET /api/audit-logs and the export endpoint. */
export interface AuditQuery {
  outcome?: AuditOutcome;
  action?: string;
  actor?: string;
  from?: string;
  to?: string;
}

function localToIso(value: string): string | undefined {
  if (value === '') return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** Resolves relative ranges against `now` once, so the query key stays stable until re-applied. */
export function toQuery(draft: FilterDraft, now: Date): AuditQuery {
  const query: AuditQuery = {};
  if (draft.outcome) query.outcome = draft.outcome;
  if (draft.action.trim()) query.action = draft.action.trim();
  if (draft.actor.trim()) query.actor = draft.actor.trim();
  if (draft.range === 'custom') {
    const from = localToIso(draft.customFrom);
    const to = localToIso(draft.customTo);
    if (from) query.from = from;
    if (to) query.to = to;
  } else if (draft.range !== 'all') {
    query.from = new Date(now.getTime() - RANGE_HOURS[draft.range] * 3_600_000).toISOString();
  }
  return query;
}
