import { useEffect, useState } from 'react';
import type { LabSwitch } from '../../../api/types';
import { Badge, type BadgeTone } from '../../../components';
import { formatPhaseTime, PHASES, phaseLabel, phaseSeconds } from './api';

const PENDING = { label: 'Waiting', tone: 'neutral' as BadgeTone };
const STATUS: Record<string, { label: string; tone: BadgeTone }> = {
  running: { label: 'Running', tone: 'info' },
  done: { label: 'Done', tone: 'success' },
  skipped: { label: 'Skipped', tone: 'neutral' },
  failed: { label: 'Failed', tone: 'danger' },
  pending: { label: 'Waiting', tone: 'neutral' },
};

/** Re-renders every `ms` while `active`, returning the current time. */
function useNow(active: boolean, ms = 100): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const t = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(t);
  }, [active, ms]);
  return now;
}

function reasonOf(detail: unknown): string | null {
  if (detail && typeof detail === 'object') {
    const d = detail as Record<string, unknown>;
    if (typeof d.error === 'string') return d.error;
    if (typeof d.reason === 'string') return d.reason;
  }
  return null;
}

/**
 * The timed phases of a live switch, in execution order: finished phases show their measured
 * duration, the running one a live timer, phases not reached yet "Waiting".
 */
export function PhaseTimeline({ sw }: { sw: LabSwitch }) {
  const running = sw.phases.some((p) => p.status === 'running');
  const now = useNow(running);
  const total = sw.phases.reduce((sum, p) => sum + phaseSeconds(p, now), 0);
  return (
    <div className="lab-timeline">
      <ol className="lab-phases" aria-label="Switch phases">
        {PHASES.map(({ name }) => {
          const p = sw.phases.find((x) => x.name === name);
          const status = p?.status ?? (sw.status === 'failed' ? 'skipped' : 'pending');
          const s = STATUS[status] ?? PENDING;
          const why = p ? reasonOf(p.detail) : sw.status === 'failed' ? 'not reached' : null;
          return (
            <li key={name} className={`lab-phase lab-phase--${status}`} data-phase={name}>
              <span className="lab-phase__name">{phaseLabel(name)}</span>
              <span className="lab-phase__time" aria-label={`${phaseLabel(name)} time`}>
                {p ? formatPhaseTime(phaseSeconds(p, now)) : '—'}
              </span>
              <Badge tone={s.tone}>{status === 'running' ? `${s.label}…` : s.label}</Badge>
              {why && <span className="lab-phase__why muted">{why}</span>}
            </li>
          );
        })}
      </ol>
      <p className="muted lab-timeline__total">
        {running ? 'Elapsed' : 'Total'}: <strong>{total.toFixed(1)} s</strong>
      </p>
    </div>
  );
}
