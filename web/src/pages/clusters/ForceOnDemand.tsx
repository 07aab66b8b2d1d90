import { useEffect, useState } from 'react';
import { errorMessage } from '../../api/errors';
import { Badge, Button, Card, Modal, SelectField, TextField } from '../../components';
import { formatDateTime } from '../../lib/format';
import {
  confirmText,
  coversCluster,
  DURATIONS,
  MAX_HOURS,
  overrideScopeLabel,
  overrideTimeLeft,
  useForceOnDemand,
  useOverrides,
  useRevokeOverride,
  type ForceTarget,
  type Override,
  type OverrideStarted,
} from './overrides';

interface ForceOnDemandModalProps {
  target: ForceTarget;
  open: boolean;
  onClose: () => void;
  /** Called once the override is in force, with its jobs. */
  onStarted?: (started: OverrideStarted) => void;
}

/**
 * "Force on-demand" for an instance, a cluster or the whole organization: how long (1 h – 30 days,
 * or until revoked), why, and a confirmation naming what will be replaced.
 */
export function ForceOnDemandModal({ target, open, onClose, onStarted }: ForceOnDemandModalProps) {
  const [choice, setChoice] = useState('6');
  const [custom, setCustom] = useState('');
  const [reason, setReason] = useState('');
  const force = useForceOnDemand(target);
  const hours: number | null = choice === 'until' ? null : choice === 'custom' ? Number(custom) : Number(choice);
  const customError =
    choice === 'custom' && (!Number.isInteger(hours) || hours === null || hours < 1 || hours > MAX_HOURS)
      ? `Enter whole hours from 1 to ${MAX_HOURS}`
      : undefined;

  const close = () => {
    force.reset();
    setChoice('6');
    setCustom('');
    setReason('');
    onClose();
  };

  const submit = () => {
    if (customError !== undefined) return;
    force.mutate(
      { duration_hours: hours, reason: reason.trim() === '' ? null : reason.trim() },
      {
        onSuccess: (started) => {
          onStarted?.(started);
          close();
        },
      },
    );
  };

  return (
    <Modal
      open={open}
      onClose={close}
      title={target.scope === 'organization' ? 'Force all clusters to on-demand' : `Force ${target.label} to on-demand`}
      description="Spot nodes are replaced by on-demand nodes of the same type through the safe path (launch, Ready, cordon, drain, terminate), and no spot capacity is bought while the override lasts. When it ends, the cluster goes back to its policy."
      footer={
        <>
          <Button variant="ghost" onClick={close}>
            Cancel
          </Button>
          <Button variant="danger" onClick={submit} loading={force.isPending} disabled={customError !== undefined}>
            Apply
          </Button>
        </>
      }
    >
      <div className="stack">
        {force.isError && (
          <div className="form-alert" role="alert">
            {errorMessage(force.error)}
          </div>
        )}
        <SelectField label="How long?" value={choice} onChange={(event) => setChoice(event.target.value)}>
          {DURATIONS.map((d) => (
            <option key={d.label} value={d.hours === null ? 'until' : String(d.hours)}>
              {d.label}
            </option>
          ))}
          <option value="custom">Custom…</option>
        </SelectField>
        {choice === 'custom' && (
          <TextField
            label="Hours"
            type="number"
            min={1}
            max={MAX_HOURS}
            value={custom}
            onChange={(event) => setCustom(event.target.value)}
            error={custom === '' ? undefined : customError}
          />
        )}
        <TextField label="Reason (optional)" maxLength={500} value={reason} placeholder="e.g. incident INC-42, demo for a customer" onChange={(event) => setReason(event.target.value)} />
        <div className={target.scope === 'organization' ? 'callout callout--warning' : 'callout callout--info'}>
          {confirmText(target, customError === undefined ? hours : null)}
        </div>
      </div>
    </Modal>
  );
}

/** Live countdown text, refreshed every 30 s. */
function TimeLeft({ override }: { override: Override }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(timer);
  }, []);
  return <span>{overrideTimeLeft(override, now)}</span>;
}

/**
 * Overrides in force (and recently ended): all of the organization's, or only those covering one
 * cluster. Admins can revoke them; the cluster then goes back to its policy.
 */
export function OverridesCard({ clusterId, canManage }: { clusterId?: string; canManage: boolean }) {
  const overrides = useOverrides();
  const revoke = useRevokeOverride();
  const items = (overrides.data?.items ?? []).filter((o) => clusterId === undefined || coversCluster(o, clusterId));
  const active = items.filter((o) => o.active);
  if (overrides.isPending || items.length === 0) return null;
  return (
    <Card title={`Manual overrides (${active.length} in force)`}>
      {revoke.isError && (
        <div className="form-alert" role="alert">
          {errorMessage(revoke.error)}
        </div>
      )}
      <ul className="stack override-list" aria-label="Manual overrides">
        {items.map((o) => (
          <li key={o.id} className="row row--wrap row--between">
            <span className="row row--wrap">
              <Badge tone={o.active ? 'warning' : 'neutral'}>{o.active ? 'Forced on-demand' : 'Ended'}</Badge>
              <strong>{overrideScopeLabel(o)}</strong>
              <span className="muted">
                since {formatDateTime(o.created_at)} · <TimeLeft override={o} />
                {o.reason != null && ` · ${o.reason}`}
              </span>
            </span>
            {o.active && canManage && o.scope !== 'platform' && (
              <Button variant="ghost" loading={revoke.isPending && revoke.variables === o.id} onClick={() => revoke.mutate(o.id)}>
                Revoke
              </Button>
            )}
          </li>
        ))}
      </ul>
    </Card>
  );
}
