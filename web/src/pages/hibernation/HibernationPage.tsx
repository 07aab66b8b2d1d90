import { useEffect, useMemo, useState } from 'react';
import { useSearchParams } from 'react-router-dom';
import { ApiError, errorMessage } from '../../api/errors';
import { canManageOrg, useMe } from '../../auth/MeContext';
import { Badge, Button, Card, CheckboxField, EmptyState, ErrorState, SelectField, SkeletonRows, TextField, useToast } from '../../components';
import { PageHeader } from '../../layout/PageHeader';
import { formatDateTime, formatUsdCents } from '../../lib/format';
import { useClusters } from '../clusters/api';
import {
  mergeHolidays,
  useHibernationSchedule,
  useHibernationState,
  useHolidayCountries,
  useImportHolidays,
  useManual,
  useSaveSchedule,
  type DateOverride,
  type HibernationSchedule,
  type HibernationScheduleInput,
  type HibernationStatus,
} from './api';
import { awakeHours, countdown, DAYS, HOURS, paint, prewarmSlots, slotIndex, timeZones } from './grid';

export const HIBERNATION_PATH = '/hibernation';

function toInput(s: HibernationSchedule): HibernationScheduleInput {
  return {
    enabled: s.enabled,
    slots: s.slots,
    timezone: s.timezone,
    prewarm_minutes: s.prewarm_minutes,
    holidays: s.holidays,
    overrides: s.overrides,
    node_groups: s.node_groups,
    protected_namespaces: s.protected_namespaces,
  };
}

const STATE_LABEL: Record<string, string> = { awake: 'Active', asleep: 'Hibernating', transitioning: 'Transitioning' };

function StatusCard({ clusterId, state, canEdit }: { clusterId: string; state: HibernationStatus; canEdit: boolean }) {
  const manual = useManual(clusterId);
  const toast = useToast();
  const [hours, setHours] = useState('');
  const run = (action: Parameters<typeof manual.mutate>[0], done: string) =>
    manual.mutate(action, {
      onSuccess: () => toast.success(done),
      onError: (e) => toast.error(errorMessage(e)),
    });
  const duration = hours === '' ? undefined : Number(hours);
  const next = state.next_transition;
  return (
    <Card title="Command center">
      <div className="row" style={{ alignItems: 'center', gap: 16, flexWrap: 'wrap' }}>
        <Badge tone={state.state === 'awake' ? 'success' : state.state === 'asleep' ? 'info' : 'warning'}>
          <span data-testid="hibernation-state">{STATE_LABEL[state.state] ?? state.state}</span>
        </Badge>
        <span>
          Schedule wants <strong>{state.desired}</strong> ({state.reason.replace('_', ' ')})
        </span>
        {next && (
          <span>
            {next.to === 'asleep' ? 'Next sleep' : 'Wakes'} {formatDateTime(next.at)} · in {countdown(next.at)}
          </span>
        )}
        {state.state === 'asleep' && <span>Saving {formatUsdCents(state.saving_hourly)}/hour</span>}
      </div>
      {state.last_error && (
        <p role="alert" className="field__error">
          Last transition failed: {state.last_error}
        </p>
      )}
      {state.manual && (
        <p>
          Manual override: {state.manual.state === 'asleep' ? 'hibernating' : 'awake'}
          {state.manual.until ? ` until ${formatDateTime(state.manual.until)}` : ' until changed'}
        </p>
      )}
      <p data-testid="savings">
        This month&apos;s savings: <strong>{formatUsdCents(state.savings.saved_usd)}</strong> ({state.savings.hours_asleep.toFixed(1)} h asleep; actual{' '}
        {formatUsdCents(state.savings.actual_usd)} vs {formatUsdCents(state.savings.counterfactual_usd)} running 24/7)
      </p>
      {canEdit && (
        <div className="row" style={{ gap: 8, alignItems: 'flex-end', flexWrap: 'wrap' }}>
          <SelectField label="For" value={hours} onChange={(e) => setHours(e.target.value)}>
            <option value="">until the schedule changes</option>
            <option value="1">1 hour</option>
            <option value="4">4 hours</option>
            <option value="12">12 hours</option>
            <option value="72">3 days</option>
          </SelectField>
          <Button variant="primary" loading={manual.isPending} onClick={() => run({ kind: 'wake', hours: duration }, 'Waking the cluster')}>
            Wake up now
          </Button>
          <Button variant="danger" loading={manual.isPending} onClick={() => run({ kind: 'sleep', hours: duration }, 'Hibernating the cluster')}>
            Hibernate now
          </Button>
          {state.manual && (
            <Button variant="ghost" onClick={() => run({ kind: 'resume' }, 'Back on schedule')}>
              Resume schedule
            </Button>
          )}
        </div>
      )}
    </Card>
  );
}

/** The 7×24 grid: press on a cell and drag to paint awake (or asleep, from an awake cell). */
export function WeekGrid({ slots, prewarm, disabled, onChange }: { slots: boolean[]; prewarm: number; disabled: boolean; onChange: (s: boolean[]) => void }) {
  const [drag, setDrag] = useState<{ from: [number, number]; awake: boolean; base: boolean[] } | null>(null);
  const warm = useMemo(() => prewarmSlots(slots, prewarm), [slots, prewarm]);
  useEffect(() => {
    const stop = () => setDrag(null);
    window.addEventListener('mouseup', stop);
    return () => window.removeEventListener('mouseup', stop);
  }, []);
  return (
    <table className="hibernation-grid" aria-label="Weekly schedule" style={{ borderCollapse: 'collapse', userSelect: 'none' }}>
      <thead>
        <tr>
          <th />
          {Array.from({ length: HOURS }, (_, h) => (
            <th key={h} style={{ fontSize: 10, fontWeight: 400 }}>
              {h}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {DAYS.map((day, d) => (
          <tr key={day}>
            <th scope="row" style={{ fontSize: 12, paddingRight: 6 }}>
              {day}
            </th>
            {Array.from({ length: HOURS }, (_, h) => {
              const i = slotIndex(d, h);
              const awake = slots[i] ?? true;
              const kind = awake ? 'awake' : warm.has(i) ? 'prewarm' : 'asleep';
              return (
                <td
                  key={h}
                  role="gridcell"
                  aria-label={`${day} ${String(h).padStart(2, '0')}:00 ${kind}`}
                  aria-selected={awake}
                  data-kind={kind}
                  onMouseDown={(e) => {
                    if (disabled) return;
                    e.preventDefault();
                    const start = { from: [d, h] as [number, number], awake: !awake, base: slots };
                    setDrag(start);
                    onChange(paint(slots, [d, h], [d, h], !awake));
                  }}
                  onMouseEnter={() => {
                    if (drag) onChange(paint(drag.base, drag.from, [d, h], drag.awake));
                  }}
                  style={{
                    width: 18,
                    height: 18,
                    border: '1px solid var(--border, #ddd)',
                    cursor: disabled ? 'default' : 'pointer',
                    background: kind === 'awake' ? '#34a853' : kind === 'prewarm' ? '#fbbc04' : '#cfd4da',
                  }}
                />
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** One-click import of a country's national holidays into the (unsaved) calendar. */
export function HolidayImport({ current, onImport }: { current: string[]; onImport: (holidays: string[], names: Record<string, string>) => void }) {
  const countries = useHolidayCountries();
  const load = useImportHolidays();
  const toast = useToast();
  const thisYear = new Date().getFullYear();
  const [country, setCountry] = useState('');
  const [year, setYear] = useState(thisYear);
  const items = countries.data?.items ?? [];
  const chosen = country || items[0]?.code || '';
  const years = [thisYear, thisYear + 1].filter((y) => !countries.data || (y >= countries.data.first_year && y <= countries.data.last_year));
  const run = () =>
    load.mutate(
      { country: chosen, year },
      {
        onSuccess: (list) => {
          const { holidays, added } = mergeHolidays(
            current,
            list.items.map((h) => h.date),
          );
          onImport(holidays, Object.fromEntries(list.items.map((h) => [h.date, h.name])));
          toast.success(
            added === 0
              ? `All ${list.items.length} holidays of ${list.country_name} ${list.year} are already in the calendar`
              : `Added ${added} national holidays of ${list.country_name} ${list.year}. Save the schedule to keep them.`,
          );
        },
        onError: (e) => toast.error(errorMessage(e)),
      },
    );
  if (countries.isError) return <p className="field__hint">National holidays are unavailable: {errorMessage(countries.error)}</p>;
  return (
    <div className="row" style={{ gap: 8, alignItems: 'flex-end', flexWrap: 'wrap' }} aria-label="Import national holidays">
      <SelectField label="Country" value={chosen} onChange={(e) => setCountry(e.target.value)} disabled={items.length === 0}>
        {items.map((c) => (
          <option key={c.code} value={c.code}>
            {c.name}
          </option>
        ))}
      </SelectField>
      <SelectField label="Year" value={String(year)} onChange={(e) => setYear(Number(e.target.value))}>
        {years.map((y) => (
          <option key={y} value={y}>
            {y}
          </option>
        ))}
      </SelectField>
      <Button size="sm" loading={load.isPending} disabled={!chosen} onClick={run}>
        Import national holidays
      </Button>
    </div>
  );
}

function ScheduleEditor({ clusterId, schedule, groups, canEdit }: { clusterId: string; schedule: HibernationSchedule; groups: string[]; canEdit: boolean }) {
  const [form, setForm] = useState<HibernationScheduleInput>(() => toInput(schedule));
  const [holiday, setHoliday] = useState('');
  const [holidayNames, setHolidayNames] = useState<Record<string, string>>({});
  const [override, setOverride] = useState<DateOverride>({ date: '', mode: 'awake' });
  const [namespaces, setNamespaces] = useState(schedule.protected_namespaces.join(', '));
  const save = useSaveSchedule(clusterId);
  const toast = useToast();
  useEffect(() => {
    setForm(toInput(schedule));
    setNamespaces(schedule.protected_namespaces.join(', '));
  }, [schedule]);
  const zones = useMemo(() => timeZones(), []);
  const fieldError = save.error instanceof ApiError ? save.error : undefined;
  const errorFor = (prefix: string) => (fieldError?.field?.startsWith(prefix) ? fieldError.message : undefined);
  const set = <K extends keyof HibernationScheduleInput>(key: K, value: HibernationScheduleInput[K]) => setForm((f) => ({ ...f, [key]: value }));
  const dirty =
    JSON.stringify(form) !== JSON.stringify(toInput(schedule)) || namespaces !== schedule.protected_namespaces.join(', ');
  const localNow = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  let clusterNow = '';
  try {
    clusterNow = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', timeZone: form.timezone });
  } catch {
    clusterNow = '—';
  }
  const submit = () => {
    const body = {
      ...form,
      protected_namespaces: namespaces
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    };
    save.mutate(body, { onSuccess: () => toast.success('Schedule saved') });
  };
  return (
    <Card title="Weekly schedule">
      <CheckboxField label="Hibernate on this schedule" checked={form.enabled ?? false} disabled={!canEdit} onChange={(e) => set('enabled', e.target.checked)} />
      <p className="field__hint">
        {awakeHours(form.slots)} awake hours a week. Green: active, grey: asleep (groups at 0), yellow: pre-warm.
      </p>
      <WeekGrid slots={form.slots} prewarm={form.prewarm_minutes ?? 0} disabled={!canEdit} onChange={(s) => set('slots', s)} />
      {errorFor('slots') && <p className="field__error">{errorFor('slots')}</p>}
      <div className="row" style={{ gap: 16, flexWrap: 'wrap' }}>
        <SelectField
          label="Cluster time zone"
          value={form.timezone}
          disabled={!canEdit}
          error={errorFor('timezone')}
          hint={`Your local time ${localNow} · cluster time ${clusterNow}`}
          onChange={(e) => set('timezone', e.target.value)}
        >
          {(zones.includes(form.timezone) ? zones : [form.timezone, ...zones]).map((z) => (
            <option key={z} value={z}>
              {z}
            </option>
          ))}
        </SelectField>
        <TextField
          label="Pre-warm (minutes)"
          type="number"
          min={0}
          max={240}
          value={String(form.prewarm_minutes ?? 0)}
          disabled={!canEdit}
          error={errorFor('prewarm_minutes')}
          onChange={(e) => set('prewarm_minutes', Number(e.target.value))}
        />
        <TextField
          label="Protected namespaces"
          hint="Comma-separated; a node running their pods stays awake."
          value={namespaces}
          disabled={!canEdit}
          error={errorFor('protected_namespaces')}
          onChange={(e) => setNamespaces(e.target.value)}
        />
      </div>
      <fieldset>
        <legend>Node groups to hibernate (none ticked: all)</legend>
        {groups.length === 0 && <p className="field__hint">No Auto Scaling groups discovered yet.</p>}
        {groups.map((g) => (
          <CheckboxField
            key={g}
            label={g}
            disabled={!canEdit}
            checked={(form.node_groups ?? []).includes(g)}
            onChange={(e) => set('node_groups', e.target.checked ? [...(form.node_groups ?? []), g] : (form.node_groups ?? []).filter((x) => x !== g))}
          />
        ))}
      </fieldset>
      <div className="row" style={{ gap: 24, flexWrap: 'wrap', alignItems: 'flex-start' }}>
        <div>
          <h3>Holidays (sleep all day)</h3>
          <ul aria-label="Holidays">
            {(form.holidays ?? []).map((d) => (
              <li key={d}>
                {d}
                {holidayNames[d] ? ` · ${holidayNames[d]}` : ''}{' '}
                {canEdit && (
                  <Button size="sm" variant="ghost" aria-label={`Remove holiday ${d}`} onClick={() => set('holidays', (form.holidays ?? []).filter((x) => x !== d))}>
                    ×
                  </Button>
                )}
              </li>
            ))}
          </ul>
          {errorFor('holidays') && <p className="field__error">{errorFor('holidays')}</p>}
          {canEdit && (
            <HolidayImport
              current={form.holidays ?? []}
              onImport={(holidays, names) => {
                set('holidays', holidays);
                setHolidayNames((n) => ({ ...n, ...names }));
              }}
            />
          )}
          {canEdit && (
            <div className="row" style={{ gap: 8, alignItems: 'flex-end' }}>
              <TextField label="Holiday date" type="date" value={holiday} onChange={(e) => setHoliday(e.target.value)} />
              <Button
                size="sm"
                disabled={!holiday}
                onClick={() => {
                  set('holidays', Array.from(new Set([...(form.holidays ?? []), holiday])).sort());
                  setHoliday('');
                }}
              >
                Add holiday
              </Button>
            </div>
          )}
        </div>
        <div>
          <h3>Date overrides</h3>
          <ul aria-label="Overrides">
            {(form.overrides ?? []).map((o) => (
              <li key={o.date}>
                {o.date}: {o.mode === 'awake' ? 'stay awake (sprint day)' : 'sleep all day'}{' '}
                {canEdit && (
                  <Button size="sm" variant="ghost" aria-label={`Remove override ${o.date}`} onClick={() => set('overrides', (form.overrides ?? []).filter((x) => x.date !== o.date))}>
                    ×
                  </Button>
                )}
              </li>
            ))}
          </ul>
          {errorFor('overrides') && <p className="field__error">{errorFor('overrides')}</p>}
          {canEdit && (
            <div className="row" style={{ gap: 8, alignItems: 'flex-end' }}>
              <TextField label="Override date" type="date" value={override.date} onChange={(e) => setOverride({ ...override, date: e.target.value })} />
              <SelectField label="Mode" value={override.mode} onChange={(e) => setOverride({ ...override, mode: e.target.value as DateOverride['mode'] })}>
                <option value="awake">Stay awake</option>
                <option value="sleep">Sleep all day</option>
              </SelectField>
              <Button
                size="sm"
                disabled={!override.date}
                onClick={() => {
                  set('overrides', [...(form.overrides ?? []).filter((x) => x.date !== override.date), override].sort((a, b) => a.date.localeCompare(b.date)));
                  setOverride({ date: '', mode: 'awake' });
                }}
              >
                Add override
              </Button>
            </div>
          )}
        </div>
      </div>
      {save.isError && !fieldError?.field && <p role="alert">{errorMessage(save.error)}</p>}
      {canEdit && (
        <div className="row" style={{ gap: 12, alignItems: 'center' }}>
          <Button variant="primary" loading={save.isPending} onClick={submit}>
            Save schedule
          </Button>
          {dirty && (
            <span role="status" data-testid="schedule-unsaved">
              Unsaved changes
            </span>
          )}
        </div>
      )}
    </Card>
  );
}

export function HibernationPage() {
  const me = useMe();
  const canEdit = canManageOrg(me);
  const clusters = useClusters();
  const [params, setParams] = useSearchParams();
  const items = clusters.data?.items ?? [];
  const clusterId = params.get('cluster') ?? items[0]?.id;
  const schedule = useHibernationSchedule(clusterId);
  const state = useHibernationState(clusterId);
  return (
    <>
      <PageHeader title="Cluster hibernation" subtitle="Scale node groups to zero when nobody works, and back exactly as they were." />
      {clusters.isLoading && <SkeletonRows rows={4} />}
      {clusters.isError && <ErrorState title="Could not load clusters" error={clusters.error} />}
      {clusters.isSuccess && items.length === 0 && <EmptyState title="No clusters yet" description="Link a cloud account to discover clusters." />}
      {clusterId && (
        <>
          <SelectField label="Cluster" value={clusterId} onChange={(e) => setParams({ cluster: e.target.value })}>
            {items.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name} ({c.account_name})
              </option>
            ))}
          </SelectField>
          {state.isError && <ErrorState title="Could not load the hibernation state" error={state.error} />}
          {state.data && <StatusCard clusterId={clusterId} state={state.data} canEdit={canEdit} />}
          {schedule.isError && <ErrorState title="Could not load the schedule" error={schedule.error} />}
          {schedule.data && <ScheduleEditor clusterId={clusterId} schedule={schedule.data} groups={state.data?.groups ?? []} canEdit={canEdit} />}
        </>
      )}
    </>
  );
}
