import { useState, type FormEvent } from 'react';
import type { AuditOutcome } from '../../api/types';
import { Button, SelectField, TextField } from '../../components';
import { DEFAULT_DRAFT, TIME_RANGES, type FilterDraft, type TimeRange } from './filters';

/** Filter bar; changes take effect when applied so typing does not fire a request per keystroke. */
export function AuditFilters({ onApply }: { onApply: (draft: FilterDraft) => void }) {
  const [draft, setDraft] = useState<FilterDraft>(DEFAULT_DRAFT);
  const set = <K extends keyof FilterDraft>(key: K, value: FilterDraft[K]) => setDraft((current) => ({ ...current, [key]: value }));

  const submit = (event: FormEvent) => {
    event.preventDefault();
    onApply(draft);
  };

  return (
    <form className="filters" onSubmit={submit} aria-label="Audit log filters">
      <SelectField label="Time range" value={draft.range} onChange={(event) => set('range', event.target.value as TimeRange)}>
        {TIME_RANGES.map((range) => (
          <option key={range.value} value={range.value}>
            {range.label}
          </option>
        ))}
      </SelectField>
      {draft.range === 'custom' && (
        <>
          <TextField label="From" type="datetime-local" value={draft.customFrom} onChange={(event) => set('customFrom', event.target.value)} />
          <TextField label="To" type="datetime-local" value={draft.customTo} onChange={(event) => set('customTo', event.target.value)} />
        </>
      )}
      <SelectField label="Outcome" value={draft.outcome} onChange={(event) => set('outcome', event.target.value as AuditOutcome | '')}>
        <option value="">Any outcome</option>
        <option value="success">Success</option>
        <option value="failed">Failed</option>
        <option value="denied">Denied</option>
      </SelectField>
      <TextField label="Action" placeholder="e.g. invite.create" value={draft.action} onChange={(event) => set('action', event.target.value)} />
      <TextField label="Actor" placeholder="Email or user ID" value={draft.actor} onChange={(event) => set('actor', event.target.value)} />
      <div className="row">
        <Button type="submit" variant="primary">
          Apply
        </Button>
        <Button
          variant="ghost"
          onClick={() => {
            setDraft(DEFAULT_DRAFT);
            onApply(DEFAULT_DRAFT);
          }}
        >
          Reset
        </Button>
      </div>
    </form>
  );
}
