import { useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { ApiError, errorMessage } from '../../../api/errors';
import { Badge, Button, Card, ErrorState, Modal, SelectField, SkeletonRows, Table, TextField, type BadgeTone, type Column } from '../../../components';
import { formatDateTime } from '../../../lib/format';
import { DURATIONS, overrideTimeLeft, useRevokeOverride } from '../../clusters/overrides';
import {
  activeOverride,
  platformOverridesKey,
  switchedRatio,
  switchedText,
  useForcePlatform,
  usePlatformOverrides,
  type ClusterProgress,
  type OverrideProgress,
  type PlatformOverride,
} from './emergency';

export const SUCCESS_TEXT = 'All nodes on on-demand. Safe for maintenance.';

/**
 * Global control: the platform-wide emergency override. "Manual override" asks for a reason and a
 * duration, then every managed cluster of every organization is switched to on-demand; the card
 * follows the switch live (nodes switched, per-cluster jobs) and reverts it on demand.
 */
export function EmergencyOverrideCard() {
  const overrides = usePlatformOverrides();
  const [asking, setAsking] = useState(false);
  const active = activeOverride(overrides.data?.items);
  const last = overrides.data?.items.find((item) => !item.override.active);
  return (
    <Card
      title="Emergency override"
      actions={
        overrides.isSuccess && active === undefined ? (
          <Button variant="danger" onClick={() => setAsking(true)}>
            Manual override
          </Button>
        ) : undefined
      }
    >
      {overrides.isPending && <SkeletonRows label="Loading the emergency override" />}
      {overrides.isError && <ErrorState error={overrides.error} onRetry={() => void overrides.refetch()} />}
      {overrides.isSuccess && active !== undefined && <ActiveOverride item={active} />}
      {overrides.isSuccess && active === undefined && (
        <div className="stack">
          <p className="muted">
            Switches every spot node of every organization&apos;s managed clusters to on-demand through the safe path (launch, Ready, cordon,
            drain, terminate) and buys no spot capacity until it ends, for maintenance or a spot market emergency.
          </p>
          {last !== undefined && <LastOverride item={last} />}
        </div>
      )}
      <ConfirmOverrideModal open={asking} onClose={() => setAsking(false)} />
    </Card>
  );
}

function ConfirmOverrideModal({ open, onClose }: { open: boolean; onClose: () => void }) {
  const [reason, setReason] = useState('');
  const [choice, setChoice] = useState('6');
  const [touched, setTouched] = useState(false);
  const force = useForcePlatform();
  const hours = choice === 'until' ? null : Number(choice);
  const blank = reason.trim() === '';
  const serverField = force.error instanceof ApiError ? force.error.field : undefined;
  const reasonError = touched && blank ? 'A reason is required' : serverField === 'reason' ? errorMessage(force.error) : undefined;

  const close = () => {
    force.reset();
    setReason('');
    setChoice('6');
    setTouched(false);
    onClose();
  };

  const submit = () => {
    setTouched(true);
    if (blank) return;
    force.mutate({ reason: reason.trim(), duration_hours: hours }, { onSuccess: close });
  };

  return (
    <Modal
      open={open}
      onClose={close}
      title="Switch ALL nodes to on-demand?"
      description="Every managed cluster of every organization replaces its spot nodes with on-demand nodes of the same type, and buys no spot capacity while the override lasts. This raises every customer's costs; it is recorded in the platform's and each organization's audit log."
      footer={
        <>
          <Button variant="ghost" onClick={close}>
            Cancel
          </Button>
          <Button variant="danger" onClick={submit} loading={force.isPending} disabled={blank}>
            Switch all nodes
          </Button>
        </>
      }
    >
      <div className="stack">
        {force.isError && serverField !== 'reason' && (
          <div className="form-alert" role="alert">
            {errorMessage(force.error)}
          </div>
        )}
        <TextField
          label="Reason"
          required
          maxLength={500}
          value={reason}
          placeholder="e.g. AWS spot capacity incident in us-east-1, planned maintenance"
          onChange={(event) => setReason(event.target.value)}
          onBlur={() => setTouched(true)}
          error={reasonError}
        />
        <SelectField label="Duration" value={choice} onChange={(event) => setChoice(event.target.value)}>
          {DURATIONS.map((d) => (
            <option key={d.label} value={d.hours === null ? 'until' : String(d.hours)}>
              {d.label}
            </option>
          ))}
        </SelectField>
        <div className="callout callout--warning">
          {hours === null
            ? 'ALL nodes of ALL organizations stay on on-demand until you revert the override.'
            : `ALL nodes of ALL organizations stay on on-demand for ${hours} hour${hours === 1 ? '' : 's'}, then go back to their policies.`}
        </div>
      </div>
    </Modal>
  );
}

function ActiveOverride({ item }: { item: PlatformOverride }) {
  const queryClient = useQueryClient();
  const revoke = useRevokeOverride();
  const { override: o, progress } = item;
  const revert = () =>
    revoke.mutate(o.id, {
      onSuccess: () => void queryClient.invalidateQueries({ queryKey: platformOverridesKey }),
    });
  return (
    <div className="stack">
      <div className="row row--wrap row--between">
        <span className="row row--wrap">
          <Badge tone="warning">Override in force</Badge>
          <span className="muted">
            since {formatDateTime(o.created_at)} · {overrideTimeLeft(o)}
            {o.reason != null && ` · ${o.reason}`}
          </span>
        </span>
        <Button variant="secondary" onClick={revert} loading={revoke.isPending}>
          Revert
        </Button>
      </div>
      {revoke.isError && (
        <div className="form-alert" role="alert">
          {errorMessage(revoke.error)}
        </div>
      )}
      <Progress progress={progress} />
    </div>
  );
}

function Progress({ progress }: { progress: OverrideProgress }) {
  const percent = Math.round(switchedRatio(progress) * 100);
  const unfinished = progress.complete && !progress.all_switched;
  return (
    <div className="stack">
      <div className="row row--between">
        <strong>{switchedText(progress)}</strong>
        <span className="muted">
          {percent}% · {progress.jobs_finished}/{progress.jobs_total} cluster job{progress.jobs_total === 1 ? '' : 's'} finished
          {progress.jobs_failed > 0 && ` · ${progress.jobs_failed} failed`}
          {progress.clusters_waiting > 0 && ` · ${progress.clusters_waiting} waiting for a busy cluster`}
        </span>
      </div>
      <progress
        className={unfinished ? 'progress progress--error' : 'progress'}
        max={100}
        value={percent}
        aria-label="Override progress"
        aria-valuetext={switchedText(progress)}
      />
      {progress.all_switched && (
        <div className="callout callout--success" role="status">
          {SUCCESS_TEXT}
        </div>
      )}
      {unfinished && (
        <div className="callout callout--danger" role="alert">
          {progress.nodes_to_switch - progress.nodes_switched > 0
            ? `${progress.nodes_to_switch - progress.nodes_switched} node${progress.nodes_to_switch - progress.nodes_switched === 1 ? '' : 's'} could not be switched`
            : 'Not every node could be switched'}
          {progress.blocked > 0 && ` and ${progress.blocked} blocked (no on-demand price)`}: see the clusters below. They are still on spot.
        </div>
      )}
      <ClusterTable clusters={progress.clusters} />
    </div>
  );
}

const STATUS_TONE: Record<string, BadgeTone> = { queued: 'neutral', running: 'info', succeeded: 'success', failed: 'danger', cancelled: 'warning' };

function ClusterTable({ clusters }: { clusters: ClusterProgress[] }) {
  if (clusters.length === 0) return <p className="muted">No managed cluster on the platform: nothing to switch.</p>;
  const columns: Column<ClusterProgress>[] = [
    { key: 'organization', header: 'Organization', render: (c) => c.organization_name },
    { key: 'cluster', header: 'Cluster', render: (c) => <span className="mono">{c.cluster_name}</span> },
    {
      key: 'status',
      header: 'Job',
      render: (c) => (
        <div className="stack stack--tight">
          <span className="row">
            <Badge tone={c.job_status == null ? 'neutral' : (STATUS_TONE[c.job_status] ?? 'neutral')}>{c.job_status ?? 'waiting'}</Badge>
            {c.dry_run && <Badge tone="info">dry run</Badge>}
          </span>
          {(c.job_status === 'failed' || c.job_status === 'cancelled') && c.job_message != null && <span className="muted">{c.job_message}</span>}
        </div>
      ),
    },
    {
      key: 'nodes',
      header: 'Nodes switched',
      width: '150px',
      align: 'right',
      render: (c) => (
        <span>
          {c.nodes_switched}/{c.nodes_to_switch}
          {!c.planned && <span className="muted"> (est.)</span>}
          {c.blocked > 0 && <span className="muted"> · {c.blocked} blocked</span>}
        </span>
      ),
    },
  ];
  return <Table caption="Clusters under the override" columns={columns} rows={clusters} rowKey={(c) => c.cluster_id} />;
}

function LastOverride({ item }: { item: PlatformOverride }) {
  const { override: o, progress } = item;
  return (
    <p className="muted" aria-label="Last emergency override">
      Last override{o.reason != null && ` (${o.reason})`} started {formatDateTime(o.created_at)}, {overrideTimeLeft(o)}
      {o.ended_at != null && ` ${formatDateTime(o.ended_at)}`}: {switchedText(progress)}.
    </p>
  );
}
