import { useEffect, useRef, useState } from 'react';
import { accessTokenExpiry, getAccessToken, getRefreshToken, onAccessTokenChanged, refreshSession } from '../../../auth/session';
import { Badge, Button, Card, ErrorState, SelectField } from '../../../components';
import { LOG_LEVELS, levelTone, useRecentLogs, type LogLevel, type LogLine } from '../console/api';

/** Lines kept in the panel (the oldest scroll away). */
export const MAX_LINES = 500;
const RETRY_MS = 3000;

type StreamState = 'connecting' | 'live' | 'paused' | 'unavailable' | 'reconnecting';

const STATE_LABEL: Record<StreamState, { label: string; tone: 'success' | 'warning' | 'neutral' | 'danger' }> = {
  connecting: { label: 'Connecting…', tone: 'neutral' },
  live: { label: 'Live', tone: 'success' },
  paused: { label: 'Paused', tone: 'neutral' },
  unavailable: { label: 'Live updates unavailable', tone: 'warning' },
  reconnecting: { label: 'Reconnecting…', tone: 'warning' },
};

/** Appends lines by sequence number, without duplicates, keeping the newest `MAX_LINES`. */
export function mergeLines(current: LogLine[], incoming: LogLine[]): LogLine[] {
  const seen = new Set(current.map((l) => l.seq));
  const merged = [...current, ...incoming.filter((l) => !seen.has(l.seq))].sort((a, b) => a.seq - b.seq);
  return merged.slice(-MAX_LINES);
}

function time(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().slice(11, 23);
}

export function LogLines({ lines, label }: { lines: LogLine[]; label: string }) {
  return (
    <ol className="log-lines" aria-label={label}>
      {lines.map((l) => (
        <li key={l.seq} className={`log-line log-line--${l.level.toLowerCase()}`}>
          <span className="log-line__time">{time(l.ts)}</span>
          <Badge tone={levelTone(l.level)}>{l.level}</Badge>
          {l.component && <span className="log-line__component">{l.component}</span>}
          <span className="log-line__message">{l.message}</span>
          {Object.entries(l.fields)
            .filter(([k]) => k !== 'request_id')
            .map(([k, v]) => (
              <span key={k} className="log-line__field">
                {k}={v}
              </span>
            ))}
        </li>
      ))}
    </ol>
  );
}

/**
 * The server's log, live (super-admins only): the newest lines, then every new line over
 * server-sent events at the chosen level or above. Secrets are redacted by the server.
 */
export function LiveLogPanel() {
  const [level, setLevel] = useState<LogLevel>('info');
  const [paused, setPaused] = useState(false);
  const [lines, setLines] = useState<LogLine[]>([]);
  const [state, setState] = useState<StreamState>('connecting');
  const recent = useRecentLogs(level);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const scrollRef = useRef<HTMLDivElement>(null);
  const followRef = useRef(true);

  // Newest at the bottom: keep following the tail unless the reader scrolled up.
  useEffect(() => {
    const el = scrollRef.current;
    if (el !== null && followRef.current) el.scrollTop = el.scrollHeight;
  }, [lines]);

  useEffect(() => {
    setLines([]);
  }, [level]);

  useEffect(() => {
    if (recent.data) setLines((current) => mergeLines(current, recent.data.items));
  }, [recent.data]);

  useEffect(() => {
    if (typeof EventSource === 'undefined') {
      setState('unavailable');
      return;
    }
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
      setState((s) => (s === 'live' ? 'reconnecting' : s));
      const stream = new EventSource(`/api/admin/logs/stream?level=${level}&access_token=${encodeURIComponent(token)}`);
      source = stream;
      stream.onopen = () => setState('live');
      stream.onmessage = (message: MessageEvent<string>) => {
        if (pausedRef.current) return;
        try {
          const line = JSON.parse(message.data) as LogLine;
          if (typeof line.seq === 'number') setLines((current) => mergeLines(current, [line]));
        } catch {
          // Keep-alive comments and malformed data are ignored.
        }
      };
      stream.onerror = () => {
        if (source !== stream) return;
        stream.close();
        source = null;
        setState('reconnecting');
        window.clearTimeout(retry);
        retry = window.setTimeout(connect, RETRY_MS);
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
  }, [level]);

  const shown = paused ? 'paused' : state;
  const badge = STATE_LABEL[shown];
  return (
    <Card
      title={
        <div className="row">
          <h2>Live log</h2>
          <Badge tone={badge.tone}>{badge.label}</Badge>
        </div>
      }
      actions={
        <>
          <div className="log-level">
            <SelectField label="Level" value={level} onChange={(e) => setLevel(e.target.value as LogLevel)}>
              {LOG_LEVELS.map((l) => (
                <option key={l} value={l}>
                  {l === 'trace' ? 'trace and above' : l === 'error' ? 'error only' : `${l} and above`}
                </option>
              ))}
            </SelectField>
          </div>
          <Button onClick={() => setPaused((p) => !p)}>{paused ? 'Resume' : 'Pause'}</Button>
          <Button onClick={() => setLines([])}>Clear</Button>
        </>
      }
    >
      {recent.isError && <ErrorState error={recent.error} onRetry={() => void recent.refetch()} />}
      {lines.length === 0 && recent.isSuccess && recent.data.items.length === 0 ? (
        <p className="muted">No log lines at this level yet.</p>
      ) : (
        <div
          className="log-scroll"
          ref={scrollRef}
          onScroll={(e) => {
            const el = e.currentTarget;
            followRef.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
          }}
        >
          <LogLines lines={lines} label="Log lines" />
        </div>
      )}
      <p className="muted">
        This server&apos;s log, newest at the bottom (the last {MAX_LINES} lines are kept here). Tokens, keys and passwords are redacted
        before lines leave the server.
      </p>
    </Card>
  );
}
