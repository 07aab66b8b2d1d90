import { useQueryClient, type QueryClient } from '@tanstack/react-query';
import { useEffect, useSyncExternalStore } from 'react';
import { agentHeartbeatsKey, agentKey, accountsKey, inventoryKey, jobActionsKey, jobItemsKey, jobKey, jobsKey, scanKey } from '../api/keys';
import type { ClusterDetail, ClusterList, Job, JobItemList, JobList, LiveEvent, ScanCounts, ScanStatus } from '../api/types';
import { accessTokenExpiry, getAccessToken, getRefreshToken, onAccessTokenChanged, refreshSession } from '../auth/session';
import { useToast } from '../components';
import { takeJobAnnouncement } from './jobAnnouncements';

// Connection state of the one live stream, shared with the queries that poll while it is down.
let connected = false;
const connectionListeners = new Set<() => void>();

function setConnected(value: boolean): void {
  if (connected === value) return;
  connected = value;
  connectionListeners.forEach((listener) => listener());
}

function subscribeConnection(listener: () => void): () => void {
  connectionListeners.add(listener);
  return () => {
    connectionListeners.delete(listener);
  };
}

/** True while the live event stream is open; views poll only when it is not. */
export function useLiveConnected(): boolean {
  return useSyncExternalStore(subscribeConnection, () => connected);
}

const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 30_000;
/** Refresh the access token first when it expires within this margin. */
const TOKEN_MARGIN_MS = 10_000;

type Toast = ReturnType<typeof useToast>;

/**
 * Follows `GET /api/events` for the signed-in organization and turns its events into cache
 * updates: scan progress is written into the scan queries, account status and inventory
 * changes invalidate the affected queries, a spot interruption notice shows a toast, and job
 * progress and executed actions are written into the job queries (a finished job is re-read
 * for its plan and result, and announced with a toast when this tab started or watched it).
 * Reconnects with exponential backoff when the stream drops and with the new token whenever
 * the session refreshes. Mount once, inside the signed-in shell.
 */
export function useLiveEvents(): void {
  const queryClient = useQueryClient();
  const toast = useToast();

  useEffect(() => {
    if (typeof EventSource === 'undefined') return;
    let source: EventSource | null = null;
    let retryTimer: number | undefined;
    let failures = 0;
    let opened = false;
    let stopped = false;

    const close = () => {
      window.clearTimeout(retryTimer);
      source?.close();
      source = null;
    };

    const scheduleRetry = () => {
      window.clearTimeout(retryTimer);
      const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** failures) * (0.75 + Math.random() * 0.5);
      failures += 1;
      retryTimer = window.setTimeout(connect, delay);
    };

    function connect() {
      close();
      if (stopped) return;
      const token = getAccessToken();
      const expiry = accessTokenExpiry();
      if (token === null || (expiry !== null && expiry * 1000 < Date.now() + TOKEN_MARGIN_MS)) {
        // A fresh token arrives through onAccessTokenChanged, which connects again.
        if (getRefreshToken() === null) return;
        void refreshSession().then((refreshed) => {
          if (!refreshed && !stopped) scheduleRetry();
        });
        return;
      }
      const stream = new EventSource(`/api/events?access_token=${encodeURIComponent(token)}`);
      source = stream;
      stream.onopen = () => {
        failures = 0;
        setConnected(true);
        // Catch up on whatever happened while no stream was open.
        void queryClient.invalidateQueries({ queryKey: accountsKey });
        if (opened) void queryClient.invalidateQueries({ queryKey: inventoryKey });
        opened = true;
      };
      stream.onmessage = (message: MessageEvent<string>) => {
        const event = parseEvent(message.data);
        if (event) applyEvent(event, queryClient, toast);
      };
      stream.onerror = () => {
        // EventSource retries on its own with the same (possibly expired) token; take over.
        if (source !== stream) return;
        close();
        setConnected(false);
        scheduleRetry();
      };
    }

    const unsubscribe = onAccessTokenChanged(connect);
    connect();
    return () => {
      stopped = true;
      unsubscribe();
      close();
      setConnected(false);
    };
  }, [queryClient, toast]);
}

function parseEvent(data: string): LiveEvent | null {
  try {
    const event: unknown = JSON.parse(data);
    return typeof event === 'object' && event !== null && typeof (event as LiveEvent).type === 'string' ? (event as LiveEvent) : null;
  } catch {
    return null;
  }
}

type EventData = Record<string, unknown>;

const text = (data: EventData, key: string): string | undefined => (typeof data[key] === 'string' ? data[key] : undefined);

function applyEvent(event: LiveEvent, queryClient: QueryClient, toast: Toast): void {
  const data: EventData = typeof event.data === 'object' && event.data !== null ? (event.data as EventData) : {};
  const accountId = text(data, 'account_id');
  switch (event.type) {
    case 'scan.progress': {
      if (accountId === undefined) return;
      const phase = text(data, 'phase');
      // The server stores progress asynchronously, so a re-read could go backwards: write it.
      queryClient.setQueryData<ScanStatus>(scanKey(accountId), (scan) =>
        scan?.status === 'scanning'
          ? {
              ...scan,
              phase: phase ?? scan.phase,
              progress: typeof data.progress === 'number' ? data.progress : scan.progress,
              counts: (data.counts as ScanCounts | undefined) ?? scan.counts,
            }
          : scan,
      );
      if (phase === 'done') {
        void queryClient.invalidateQueries({ queryKey: accountsKey });
        void queryClient.invalidateQueries({ queryKey: inventoryKey });
      }
      return;
    }
    case 'account.status':
      void queryClient.invalidateQueries({ queryKey: accountsKey });
      return;
    case 'inventory.changed':
    case 'spot.rebalance':
      void queryClient.invalidateQueries({ queryKey: inventoryKey });
      return;
    case 'job.progress':
      applyJobProgress(data, queryClient, toast);
      return;
    case 'job.action': {
      const jobId = text(data, 'job_id');
      const index = data.index;
      if (jobId === undefined || typeof index !== 'number' || typeof data.action !== 'object' || data.action === null) return;
      queryClient.setQueryData<Record<number, unknown>>(jobActionsKey(jobId), (actions) => ({ ...actions, [index]: data.action }));
      return;
    }
    case 'job.item':
      applyJobItem(data, queryClient);
      return;
    case 'agent.heartbeat':
      applyAgentHeartbeat(data, event.ts, queryClient);
      return;
    case 'agent.command': {
      // A command was queued, started or finished: the agent card lists it.
      const clusterId = text(data, 'cluster_id');
      if (clusterId !== undefined) void queryClient.invalidateQueries({ queryKey: agentKey(clusterId) });
      return;
    }
    case 'agent.revoked': {
      const clusterId = text(data, 'cluster_id');
      if (clusterId !== undefined) void queryClient.invalidateQueries({ queryKey: agentKey(clusterId) });
      void queryClient.invalidateQueries({ queryKey: [...inventoryKey, 'clusters'] });
      return;
    }
    case 'decision.launch':
      void queryClient.invalidateQueries({ queryKey: inventoryKey });
      return;
    case 'spot.interruption': {
      const instance = text(data, 'instance_id') ?? 'A spot instance';
      const pool = [text(data, 'instance_type'), text(data, 'az')].filter(Boolean).join(' in ');
      toast.error(`Spot interruption notice: ${instance}${pool ? ` (${pool})` : ''} will be reclaimed in about two minutes.`);
      void queryClient.invalidateQueries({ queryKey: inventoryKey });
    }
  }
}

/**
 * An agent's heartbeat: remember when it arrived (the cluster list shows its age), re-read that
 * cluster's agent status, and mark the cluster connected in the cached list and detail without
 * re-reading the whole inventory every 30 seconds per cluster.
 */
function applyAgentHeartbeat(data: EventData, ts: string, queryClient: QueryClient): void {
  const clusterId = text(data, 'cluster_id');
  if (clusterId === undefined) return;
  const at = text(data, 'at') ?? text(data, 'last_heartbeat_at') ?? ts;
  queryClient.setQueryData<Record<string, string>>(agentHeartbeatsKey, (seen) => ({ ...seen, [clusterId]: at }));
  void queryClient.invalidateQueries({ queryKey: agentKey(clusterId) });
  const connect = <T extends { id: string }>(cluster: T): T =>
    cluster.id === clusterId ? { ...cluster, agent_status: 'connected', agent_last_heartbeat_at: at } : cluster;
  queryClient.setQueryData<ClusterList>([...inventoryKey, 'clusters'], (list) => (list ? { ...list, items: list.items.map(connect) } : list));
  queryClient.setQueryData<ClusterDetail>([...inventoryKey, 'clusters', clusterId], (detail) =>
    detail ? { ...detail, cluster: connect(detail.cluster) } : detail,
  );
}

/** One item of a batch job (waste clean-up) started or ended: written into the job's cached items. */
function applyJobItem(data: EventData, queryClient: QueryClient): void {
  const jobId = text(data, 'job_id');
  const key = text(data, 'key');
  const status = text(data, 'status');
  if (jobId === undefined || key === undefined || status === undefined) return;
  queryClient.setQueryData<JobItemList>(jobItemsKey(jobId), (list) =>
    list
      ? {
          ...list,
          items: list.items.map((item) =>
            item.key === key
              ? {
                  ...item,
                  status,
                  monthly_saving: typeof data.monthly_saving === 'number' ? data.monthly_saving : item.monthly_saving,
                  result: data.result ?? item.result,
                  error: text(data, 'error') ?? item.error,
                }
              : item,
          ),
        }
      : list,
  );
}

const FINISHED = new Set(['succeeded', 'failed']);

function applyJobProgress(data: EventData, queryClient: QueryClient, toast: Toast): void {
  const jobId = text(data, 'job_id');
  const status = text(data, 'status');
  if (jobId === undefined || status === undefined) return;
  const patch = (job: Job): Job =>
    // Never move a finished job back, nor progress backwards (events and polls interleave).
    FINISHED.has(job.status)
      ? job
      : {
          ...job,
          status,
          progress: typeof data.progress === 'number' ? Math.max(job.progress, data.progress) : job.progress,
          message: text(data, 'message') ?? job.message,
        };
  queryClient.setQueryData<Job>(jobKey(jobId), (job) => (job ? patch(job) : job));
  const listKey = [...jobsKey, 'list'];
  const listed = queryClient.getQueryData<JobList>(listKey)?.items.some((job) => job.id === jobId) ?? false;
  queryClient.setQueryData<JobList>(listKey, (jobs) => (jobs ? { items: jobs.items.map((job) => (job.id === jobId ? patch(job) : job)) } : jobs));
  if (FINISHED.has(status)) {
    // The plan and the result are only in the stored job, and an optimize job changed the cluster.
    void queryClient.invalidateQueries({ queryKey: jobsKey });
    if (text(data, 'kind') === 'optimize') void queryClient.invalidateQueries({ queryKey: inventoryKey });
    const cached = queryClient.getQueryData<Job>(jobKey(jobId));
    const announcement = takeJobAnnouncement({ id: jobId, status, message: text(data, 'message') ?? cached?.message, dry_run: cached?.dry_run ?? false });
    if (announcement) toast[announcement.tone](announcement.message);
  } else if (!listed) {
    void queryClient.invalidateQueries({ queryKey: listKey });
  }
}
