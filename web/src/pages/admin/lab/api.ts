import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef } from 'react';
import { api, unwrap } from '../../../api/client';
import type { LabAbTestDetail, LabCandidate, LabPhase, LabSample, LabSwitch } from '../../../api/types';
import { accessTokenExpiry, getAccessToken, getRefreshToken, onAccessTokenChanged, refreshSession } from '../../../auth/session';
import { riskModelsKey } from '../risk/api';

export const labKey = ['admin', 'lab'] as const;
const candidatesKey = [...labKey, 'candidates'] as const;
const switchesKey = [...labKey, 'switches'] as const;
const switchKey = (id: string) => [...labKey, 'switch', id] as const;
const abTestsKey = [...labKey, 'ab-tests'] as const;
const abTestKey = (id: string) => [...labKey, 'ab-test', id] as const;
const checklistKey = (id: string) => [...labKey, 'checklist', id] as const;

/** The switch phases in execution order, with their display names. */
export const PHASES: { name: string; label: string }[] = [
  { name: 'spot_request', label: 'Spot request' },
  { name: 'boot', label: 'Boot' },
  { name: 'node_ready', label: 'Node Ready' },
  { name: 'cordon', label: 'Cordon' },
  { name: 'drain', label: 'Drain' },
  { name: 'volume_detach', label: 'Volume detach' },
  { name: 'volume_attach', label: 'Volume attach' },
  { name: 'terminate', label: 'Terminate old node' },
];

export function phaseLabel(name: string): string {
  return PHASES.find((p) => p.name === name)?.label ?? name;
}

/** Seconds a phase took, or has been running for at `now` (ms). */
/** A phase's time for display: milliseconds under a second, else seconds. */
export function formatPhaseTime(seconds: number): string {
  return seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${seconds.toFixed(1)} s`;
}

export function phaseSeconds(phase: LabPhase, now: number): number {
  if (phase.duration_ms !== undefined && phase.duration_ms !== null) return phase.duration_ms / 1000;
  const started = Date.parse(phase.started_at);
  return Number.isNaN(started) ? 0 : Math.max(0, (now - started) / 1000);
}

export function isSwitchRunning(s: LabSwitch | undefined): boolean {
  return s !== undefined && (s.status === 'queued' || s.status === 'running');
}

export function useLabCandidates() {
  return useQuery({ queryKey: candidatesKey, queryFn: () => unwrap(api.GET('/api/lab/candidates')) });
}

export function useLabSwitches() {
  return useQuery({ queryKey: switchesKey, queryFn: () => unwrap(api.GET('/api/lab/switches')) });
}

/** One switch; polled every second while it runs (the live stream makes it instant). */
export function useLabSwitch(id: string | null) {
  return useQuery({
    queryKey: switchKey(id ?? ''),
    enabled: id !== null,
    queryFn: () => unwrap(api.GET('/api/lab/switches/{id}', { params: { path: { id: id ?? '' } } })),
    refetchInterval: (q) => (isSwitchRunning(q.state.data) ? 1000 : false),
  });
}

export function useStartSwitch() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: { instance_id: string; account_id?: string; model_id: string; target_type?: string }) =>
      unwrap(api.POST('/api/lab/live-switch', { body })),
    onSuccess: (started) => {
      queryClient.setQueryData(switchKey(started.switch.id), started.switch);
      void queryClient.invalidateQueries({ queryKey: switchesKey });
    },
  });
}

export function useAbTests() {
  return useQuery({ queryKey: abTestsKey, queryFn: () => unwrap(api.GET('/api/lab/ab-tests')) });
}

export function useAbTest(id: string | null) {
  return useQuery({
    queryKey: abTestKey(id ?? ''),
    enabled: id !== null,
    queryFn: () => unwrap(api.GET('/api/lab/ab-tests/{id}', { params: { path: { id: id ?? '' } } })),
    refetchInterval: (q) => (q.state.data?.test.status === 'running' ? 5000 : false),
  });
}

export interface AbTestForm {
  name?: string;
  account_id: string;
  model_a: string;
  model_b: string;
  tag_a?: string;
  tag_b?: string;
  duration_minutes: number;
  tick_seconds?: number;
}

export function useStartAbTest() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: AbTestForm) => unwrap(api.POST('/api/lab/ab-tests', { body })),
    onSuccess: (d) => {
      queryClient.setQueryData(abTestKey(d.test.id), d);
      void queryClient.invalidateQueries({ queryKey: abTestsKey });
      void queryClient.invalidateQueries({ queryKey: candidatesKey });
    },
  });
}

export function useStopAbTest() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => unwrap(api.POST('/api/lab/ab-tests/{id}/stop', { params: { path: { id } } })),
    onSuccess: (d) => {
      queryClient.setQueryData(abTestKey(d.test.id), d);
      void queryClient.invalidateQueries({ queryKey: abTestsKey });
      // An ended test changes the models' checklists.
      void queryClient.invalidateQueries({ queryKey: [...labKey, 'checklist'] });
    },
  });
}

export function useChecklist(modelId: string | null) {
  return useQuery({
    queryKey: checklistKey(modelId ?? ''),
    enabled: modelId !== null && modelId !== '',
    queryFn: () => unwrap(api.GET('/api/lab/models/{id}/checklist', { params: { path: { id: modelId ?? '' } } })),
  });
}

export function useGraduate() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (modelId: string) => unwrap(api.POST('/api/lab/graduate', { body: { model_id: modelId } })),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: labKey });
      void queryClient.invalidateQueries({ queryKey: riskModelsKey });
    },
  });
}

/** Linked accounts that hold running instances, from the candidate list (for the A/B form). */
export function accountsOf(instances: LabCandidate[]): { id: string; label: string; standalone: number }[] {
  const byId = new Map<string, { id: string; label: string; standalone: number }>();
  for (const i of instances) {
    const entry = byId.get(i.account_id) ?? { id: i.account_id, label: `${i.organization_name} · ${i.account_name} (${i.provider})`, standalone: 0 };
    if (!i.cluster_id) entry.standalone += 1;
    byId.set(i.account_id, entry);
  }
  return [...byId.values()].sort((a, b) => a.label.localeCompare(b.label));
}

/** One row per tick with both arms side by side, for the charts. */
export interface SeriesPoint {
  tick: number;
  costA?: number;
  costB?: number;
  /** Cumulative interruptions. */
  interruptionsA?: number;
  interruptionsB?: number;
  decisionsA?: number;
  decisionsB?: number;
}

export function seriesOf(samples: LabSample[]): SeriesPoint[] {
  const rows = new Map<number, SeriesPoint>();
  let intA = 0;
  let intB = 0;
  const sorted = [...samples].sort((x, y) => x.tick - y.tick || x.arm.localeCompare(y.arm));
  for (const s of sorted) {
    const row = rows.get(s.tick) ?? { tick: s.tick };
    if (s.arm === 'a') {
      intA += s.interruptions;
      row.costA = s.hourly_cost;
      row.interruptionsA = intA;
      row.decisionsA = s.decisions;
    } else {
      intB += s.interruptions;
      row.costB = s.hourly_cost;
      row.interruptionsB = intB;
      row.decisionsB = s.decisions;
    }
    rows.set(s.tick, row);
  }
  return [...rows.values()];
}

export interface VerdictRow {
  metric: string;
  a: number;
  b: number;
  better: string;
}

/** The verdict table of a test (the server computes it; shown as it is). */
export function verdictRows(detail: LabAbTestDetail | undefined): { rows: VerdictRow[]; summary: string } {
  const v = detail?.test.verdict as { rows?: VerdictRow[]; summary?: string } | null | undefined;
  return { rows: Array.isArray(v?.rows) ? v.rows : [], summary: typeof v?.summary === 'string' ? v.summary : '' };
}

/**
 * Follows the admin event stream while mounted and calls `onEvent` for Lab events
 * (`lab.phase`, `lab.switch`, `lab.ab_tick`, `lab.ab_test`). Reconnects after errors and
 * with the new token whenever the session refreshes.
 */
export function useLabEvents(onEvent: (type: string, data: Record<string, unknown>) => void): void {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    if (typeof EventSource === 'undefined') return;
    let source: EventSource | null = null;
    let retry: number | undefined;
    let stopped = false;
    const connect = () => {
      source?.close();
      source = null;
      if (stopped) return;
      const token = getAccessToken();
      const expiry = accessTokenExpiry();
      if (token === null || (expiry !== null && expiry * 1000 < Date.now() + 10_000)) {
        if (getRefreshToken() !== null) void refreshSession();
        return;
      }
      const stream = new EventSource(`/api/admin/events?access_token=${encodeURIComponent(token)}`);
      source = stream;
      stream.onmessage = (message: MessageEvent<string>) => {
        try {
          const event = JSON.parse(message.data) as { type?: string; data?: Record<string, unknown> };
          if (typeof event.type === 'string' && event.type.startsWith('lab.')) handler.current(event.type, event.data ?? {});
        } catch {
          // Keep-alive comments and malformed data are ignored.
        }
      };
      stream.onerror = () => {
        if (source !== stream) return;
        stream.close();
        source = null;
        window.clearTimeout(retry);
        retry = window.setTimeout(connect, 3000);
      };
    };
    const unsubscribe = onAccessTokenChanged(connect);
    connect();
    return () => {
      stopped = true;
      unsubscribe();
      window.clearTimeout(retry);
      source?.close();
    };
  }, []);
}

/** Query keys the Lab's live events refresh. */
export const labKeys = { switchKey, abTestKey, switchesKey, abTestsKey };
