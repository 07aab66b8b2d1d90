/** The weekly grid: 168 hourly slots, Monday 00:00 first, `true` awake. */
export const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
export const HOURS = 24;
export const SLOTS = DAYS.length * HOURS;

export const slotIndex = (day: number, hour: number) => day * HOURS + hour;

/** Paints the rectangle between two cells (inclusive) with `awake`. */
export function paint(slots: boolean[], from: [number, number], to: [number, number], awake: boolean): boolean[] {
  const next = slots.slice();
  const [d0, d1] = [Math.min(from[0], to[0]), Math.max(from[0], to[0])];
  const [h0, h1] = [Math.min(from[1], to[1]), Math.max(from[1], to[1])];
  for (let d = d0; d <= d1; d++) for (let h = h0; h <= h1; h++) next[slotIndex(d, h)] = awake;
  return next;
}

/**
 * Asleep slots that pre-warm wakes early: the `ceil(minutes / 60)` slots before each wake
 * (the week wraps around, Sunday night before Monday morning).
 */
export function prewarmSlots(slots: boolean[], minutes: number): Set<number> {
  const out = new Set<number>();
  const span = Math.ceil(Math.max(0, minutes) / 60);
  if (span === 0) return out;
  for (let i = 0; i < SLOTS; i++) {
    const prev = slots[(i + SLOTS - 1) % SLOTS];
    if (!slots[i] || prev) continue;
    for (let k = 1; k <= span; k++) {
      const j = (i - k + SLOTS) % SLOTS;
      if (slots[j]) break;
      out.add(j);
    }
  }
  return out;
}

/** Awake hours per week. */
export const awakeHours = (slots: boolean[]) => slots.filter(Boolean).length;

/** Time zones the browser knows (IANA names), with a short fallback list. */
export function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  const all = intl.supportedValuesOf?.('timeZone') ?? [];
  const base = all.length > 0 ? all : ['America/New_York', 'America/Chicago', 'America/Los_Angeles', 'Europe/London', 'Europe/Berlin', 'Asia/Tokyo'];
  return base.includes('UTC') ? base : ['UTC', ...base];
}

/** "08h 12m" until an instant. */
export function countdown(toIso: string, now: Date = new Date()): string {
  const ms = Math.max(0, new Date(toIso).getTime() - now.getTime());
  const minutes = Math.floor(ms / 60_000);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (h >= 48) return `${Math.floor(h / 24)}d ${String(h % 24).padStart(2, '0')}h`;
  return `${String(h).padStart(2, '0')}h ${String(m).padStart(2, '0')}m`;
}
