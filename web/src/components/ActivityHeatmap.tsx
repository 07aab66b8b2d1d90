import { formatUsdCents } from '../lib/format';

/** One hour of the week; matches the server's `HeatCell`. */
export interface ActivityCell {
  /** 0 = Monday … 6 = Sunday. */
  weekday: number;
  /** 0–23. */
  hour: number;
  /** 0–1 (CPU used ÷ allocatable). */
  utilization: number;
  idle: boolean;
  /** Mean cost of this hour, when known. */
  hourly_cost?: number;
}

interface ActivityHeatmapProps {
  /** Up to 168 cells; hours without data may be omitted and show as "no data". */
  cells: ActivityCell[];
  /** Accessible name of the grid. */
  label: string;
  /** Time zone the weekday/hour are in, shown in labels. */
  timeZone?: string;
}

export const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'] as const;
const HOURS = Array.from({ length: 24 }, (_, hour) => hour);

const pad = (hour: number) => String(hour).padStart(2, '0');
const percent = (ratio: number) => `${Math.round(ratio * 100)}%`;

type Rgb = [number, number, number];
const IDLE_LIGHT: Rgb = [191, 219, 254];
const IDLE_DEEP: Rgb = [29, 78, 216];
const BUSY_LIGHT: Rgb = [254, 215, 170];
const BUSY_DEEP: Rgb = [217, 45, 32];

function mix(from: Rgb, to: Rgb, t: number): string {
  const clamped = Math.min(1, Math.max(0, t));
  const [r, g, b] = from.map((channel, index) => Math.round(channel + ((to[index] as number) - channel) * clamped));
  return `rgb(${r} ${g} ${b})`;
}

const HEAT_RAMP = `linear-gradient(90deg, ${mix(BUSY_LIGHT, BUSY_DEEP, 0)}, ${mix(BUSY_LIGHT, BUSY_DEEP, 1)})`;

/**
 * Blue for idle hours (deeper when emptier), orange to red for active ones, full red at the
 * busiest hour of the grid (`peak`) but never below 40% utilization, so a fleet that peaks at
 * 20% does not look on fire.
 */
export function heatColor(cell: ActivityCell, peak = 0.8): string {
  if (cell.idle) return mix(IDLE_LIGHT, IDLE_DEEP, 1 - cell.utilization / 0.15);
  return mix(BUSY_LIGHT, BUSY_DEEP, (cell.utilization - 0.15) / (Math.max(peak, 0.4) - 0.15));
}

/** One-sentence text version of the grid for captions and screen readers. */
export function summarizeActivity(cells: ActivityCell[], timeZone = 'UTC'): string {
  if (cells.length === 0) return 'No activity recorded yet.';
  const idle = cells.filter((cell) => cell.idle).length;
  const busiest = cells.reduce((top, cell) => (cell.utilization > top.utilization ? cell : top));
  const idleDays = WEEKDAYS.filter((_, day) => {
    const hours = cells.filter((cell) => cell.weekday === day);
    return hours.length > 0 && hours.every((cell) => cell.idle);
  });
  const parts = [
    `${idle} of ${cells.length} hours of the week are idle`,
    idleDays.length > 0 ? `${idleDays.join(' and ')} entirely idle` : null,
    `busiest ${WEEKDAYS[busiest.weekday]?.slice(0, 3) ?? ''} ${pad(busiest.hour)}:00 ${timeZone} at ${percent(busiest.utilization)} CPU`,
  ];
  return `${parts.filter(Boolean).join('; ')}.`;
}

/**
 * 24 × 7 grid of the hours of the week: idle hours in blue, busy ones from orange to red.
 * A real table underneath, so screen readers get day and hour headers for every cell.
 */
export function ActivityHeatmap({ cells, label, timeZone = 'UTC' }: ActivityHeatmapProps) {
  const byKey = new Map(cells.map((cell) => [`${cell.weekday}:${cell.hour}`, cell]));
  const peak = cells.reduce((max, cell) => Math.max(max, cell.utilization), 0);
  return (
    <figure className="heatmap">
      <div className="heatmap__scroll">
        <table className="heatmap__grid" aria-label={label}>
          <thead>
            <tr>
              <th scope="col" className="heatmap__corner">
                <span className="sr-only">Day</span>
              </th>
              {HOURS.map((hour) => (
                <th key={hour} scope="col" className="heatmap__hour">
                  <span aria-hidden="true">{hour % 3 === 0 ? pad(hour) : ''}</span>
                  <span className="sr-only">
                    {pad(hour)}:00 {timeZone}
                  </span>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {WEEKDAYS.map((day, weekday) => (
              <tr key={day}>
                <th scope="row" className="heatmap__day">
                  <abbr title={day}>{day.slice(0, 3)}</abbr>
                </th>
                {HOURS.map((hour) => {
                  const cell = byKey.get(`${weekday}:${hour}`);
                  const when = `${day} ${pad(hour)}:00 ${timeZone}`;
                  if (!cell) {
                    return (
                      <td key={hour} className="heatmap__cell heatmap__cell--empty" title={`${when}: no data`}>
                        <span className="sr-only">no data</span>
                      </td>
                    );
                  }
                  const state = cell.idle ? 'idle' : 'active';
                  const cost = cell.hourly_cost !== undefined ? ` · ${formatUsdCents(cell.hourly_cost)}/h` : '';
                  return (
                    <td
                      key={hour}
                      className={`heatmap__cell heatmap__cell--${state}`}
                      style={{ background: heatColor(cell, peak) }}
                      title={`${when}: ${percent(cell.utilization)} CPU, ${state}${cost}`}
                      data-state={state}
                    >
                      <span className="sr-only">
                        {percent(cell.utilization)}, {state}
                      </span>
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <figcaption className="heatmap__footer">
        <span className="heatmap__summary">{summarizeActivity(cells, timeZone)}</span>
        <span className="heatmap__legend" aria-hidden="true">
          <span className="heatmap__key">
            <span className="heatmap__swatch" style={{ background: mix(IDLE_LIGHT, IDLE_DEEP, 0.7) }} /> Idle (&lt;15% CPU)
          </span>
          <span className="heatmap__key">
            <span className="heatmap__swatch heatmap__swatch--ramp" style={{ background: HEAT_RAMP }} /> Low → high activity
          </span>
          <span className="heatmap__key">
            <span className="heatmap__swatch heatmap__swatch--empty" /> No data
          </span>
        </span>
      </figcaption>
    </figure>
  );
}
