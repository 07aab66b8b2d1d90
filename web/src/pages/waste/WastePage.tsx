import { useQueryClient, type UseQueryResult } from '@tanstack/react-query';
import { useEffect, useState, type ReactNode } from 'react';
import { errorMessage } from '../../api/errors';
import type { InstanceSummary, JobItem, OrphanedVolume, UnusedSnapshot } from '../../api/types';
import { canManageOrg, useMe } from '../../auth/MeContext';
import { Badge, Button, Card, CheckboxField, EmptyState, ErrorState, Modal, Skeleton, SkeletonRows, Table, useToast, type BadgeTone, type Column } from '../../components';
import { WasteIcon } from '../../components/icons';
import { PageHeader } from '../../layout/PageHeader';
import { formatDate, formatUsd, formatUsdCents } from '../../lib/format';
import { useAccounts } from '../accounts/api';
import { isFinished, jobStatus, useCancelJob, useJob } from '../clusters/jobs';
import { lifecycleLabel, lifecycleTone } from '../clusters/format';
import {
  useAuthorizeInstances,
  useJobItems,
  useOrphanedVolumes,
  useUnregisteredInstances,
  useUnusedSnapshots,
  useWasteBatch,
  wasteKey,
  type WasteBatchKind,
} from './api';

type AccountNames = Map<string, string>;

/** What a waste table's selection can be sent to. */
interface WasteAction {
  /** A batch job, or `authorize` (kept at once, no job). */
  kind: WasteBatchKind | 'authorize';
  label: string;
  danger?: boolean;
  /** The confirm dialog's title for `count` entries. */
  title: (count: number) => string;
  /** What happens, in the confirm dialog. */
  explanation: string;
}

const BATCH_LABEL: Record<string, string> = {
  cleanup_volumes: 'Orphaned volume clean-up',
  cleanup_snapshots: 'Unused snapshot clean-up',
  terminate_unregistered: 'Unregistered instance termination',
};

const plural = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;

const volumeActions: WasteAction[] = [
  {
    kind: 'cleanup_volumes',
    label: 'Clean up',
    danger: true,
    title: (n) => `Clean up ${plural(n, 'orphaned volume')}?`,
    explanation:
      'Each volume is checked again: if it is still unattached it is snapshotted, the snapshot is waited for until it completes, and only then is the volume deleted. The snapshot id is recorded; a volume attached meanwhile is skipped.',
  },
];

const snapshotActions: WasteAction[] = [
  {
    kind: 'cleanup_snapshots',
    label: 'Clean up',
    danger: true,
    title: (n) => `Delete ${plural(n, 'unused snapshot')}?`,
    explanation:
      'Each snapshot is checked again before it is deleted: one that backs an image, or whose source volume exists, is skipped. Deleted snapshots cannot be recovered.',
  },
];

const instanceActions: WasteAction[] = [
  {
    kind: 'authorize',
    label: 'Authorize',
    title: (n) => `Authorize ${plural(n, 'instance')}?`,
    explanation: 'Authorized instances are kept: they leave this list and are never terminated by a batch.',
  },
  {
    kind: 'terminate_unregistered',
    label: 'Terminate',
    danger: true,
    title: (n) => `Terminate ${plural(n, 'instance')}?`,
    explanation:
      'Each instance is checked again before it is terminated: nodes of a cluster, members of an Auto Scaling group, authorized instances and instances tagged spot-optimizer.io/protect are skipped. Termination cannot be undone.',
  },
];

export function WastePage() {
  const instances = useUnregisteredInstances();
  const volumes = useOrphanedVolumes();
  const snapshots = useUnusedSnapshots();
  const accounts = useAccounts();
  const canManage = canManageOrg(useMe());
  const [jobId, setJobId] = useState<string | null>(null);
  const names: AccountNames = new Map((accounts.data ?? []).map((account) => [account.id, account.name]));
  const lists = [instances, volumes, snapshots];
  const total = lists.every((list) => list.isSuccess) ? lists.reduce((sum, list) => sum + (list.data?.total_monthly_cost ?? 0), 0) : null;
  const manage = canManage ? setJobId : undefined;

  return (
    <>
      <PageHeader
        title="Waste"
        subtitle={
          canManage
            ? 'Resources you pay for that no cluster uses. Select entries to clean them up: each one is checked again against AWS before anything changes.'
            : 'Resources you pay for that no cluster uses. Admins and owners can clean them up from here.'
        }
      />
      <div className="stack">
        <dl className="stats stats--3">
          <div className="stat">
            <dt className="stat__label">Potential savings</dt>
            <dd className="stat__value stat__value--success">{total === null ? <Skeleton width="60%" height={28} /> : `${formatUsd(total)}/mo`}</dd>
            <dd className="stat__note">If everything below were removed</dd>
          </div>
          <div className="stat">
            <dt className="stat__label">Unregistered instances</dt>
            <dd className="stat__value">{instances.data?.items.length ?? '—'}</dd>
          </div>
          <div className="stat">
            <dt className="stat__label">Orphaned volumes / unused snapshots</dt>
            <dd className="stat__value">
              {volumes.data?.items.length ?? '—'} / {snapshots.data?.items.length ?? '—'}
            </dd>
          </div>
        </dl>
        {jobId !== null && <BatchPanel jobId={jobId} onDismiss={() => setJobId(null)} />}
        <WasteTable
          title="Unregistered instances"
          description="EC2 instances that belong to no EKS cluster."
          query={instances}
          columns={instanceColumns}
          rowKey={(instance) => instance.id}
          label={(instance) => instance.instance_id}
          empty="Every instance belongs to a cluster."
          actions={instanceActions}
          onQueued={manage}
        />
        <WasteTable
          title="Orphaned volumes"
          description="EBS volumes attached to no instance."
          query={volumes}
          columns={volumeColumns(names)}
          rowKey={(volume) => volume.id}
          label={(volume) => volume.volume_id}
          empty="No unattached volumes."
          actions={volumeActions}
          onQueued={manage}
        />
        <WasteTable
          title="Unused snapshots"
          description="Snapshots whose source volume is gone and that back no image."
          query={snapshots}
          columns={snapshotColumns(names)}
          rowKey={(snapshot) => snapshot.id}
          label={(snapshot) => snapshot.snapshot_id}
          empty="No unused snapshots."
          actions={snapshotActions}
          onQueued={manage}
        />
      </div>
    </>
  );
}

interface WasteTableProps<T> {
  title: string;
  description: string;
  query: UseQueryResult<{ items: T[]; total_monthly_cost: number }>;
  columns: Column<T>[];
  rowKey: (row: T) => string;
  /** The cloud id shown in the confirm dialog. */
  label: (row: T) => string;
  empty: string;
  actions: WasteAction[];
  /** Set for admins and owners: rows can be selected and acted on; called with a queued batch's job id. */
  onQueued?: (jobId: string) => void;
}

function WasteTable<T extends { monthly_cost: number }>({ title, description, query, columns, rowKey, label, empty, actions, onQueued }: WasteTableProps<T>) {
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [pending, setPending] = useState<WasteAction | null>(null);
  const rows = query.data?.items ?? [];
  // Entries that left the list (cleaned up, rediscovered) leave the selection too.
  const chosen = rows.filter((row) => selected.has(rowKey(row)));
  const selectable = onQueued !== undefined;
  const allChosen = rows.length > 0 && chosen.length === rows.length;

  const toggle = (key: string) =>
    setSelected((current) => {
      const next = new Set(current);
      if (next.has(key)) next.delete(key);
      else next.add(key);
      return next;
    });

  const selectColumn: Column<T> = {
    key: 'select',
    header: (
      <input
        type="checkbox"
        aria-label={`Select all ${title.toLowerCase()}`}
        checked={allChosen}
        onChange={() => setSelected(allChosen ? new Set() : new Set(rows.map(rowKey)))}
      />
    ),
    width: '2.5rem',
    render: (row) => <input type="checkbox" aria-label={`Select ${label(row)}`} checked={selected.has(rowKey(row))} onChange={() => toggle(rowKey(row))} />,
  };

  const header: ReactNode = (
    <div>
      <h2>{title}</h2>
      <p className="muted">{description}</p>
    </div>
  );
  return (
    <Card
      flush
      title={header}
      actions={
        query.isSuccess && (
          <div className="row row--wrap">
            <span className="savings">
              Potential savings <strong>{formatUsd(query.data.total_monthly_cost)}/mo</strong>
            </span>
            {selectable &&
              actions.map((action) => (
                <Button
                  key={action.kind}
                  size="sm"
                  variant={action.danger ? 'danger' : 'secondary'}
                  disabled={chosen.length === 0}
                  onClick={() => setPending(action)}
                  aria-label={`${action.label} selected ${title.toLowerCase()}`}
                >
                  {action.label}
                  {chosen.length > 0 && ` (${chosen.length})`}
                </Button>
              ))}
          </div>
        )
      }
    >
      {query.isPending && <SkeletonRows rows={3} label={`Loading ${title.toLowerCase()}`} />}
      {query.isError && <ErrorState error={query.error} title={`Could not load ${title.toLowerCase()}`} onRetry={() => void query.refetch()} />}
      {query.isSuccess &&
        (query.data.items.length === 0 ? (
          <EmptyState icon={<WasteIcon size={22} />} title="Nothing to clean up" description={empty} />
        ) : (
          <Table caption={title} columns={selectable ? [selectColumn, ...columns] : columns} rows={query.data.items} rowKey={rowKey} />
        ))}
      {pending !== null && onQueued !== undefined && (
        <ConfirmAction
          action={pending}
          ids={chosen.map(rowKey)}
          labels={chosen.map(label)}
          monthly={chosen.reduce((sum, row) => sum + row.monthly_cost, 0)}
          onClose={() => setPending(null)}
          onDone={(jobId) => {
            setPending(null);
            setSelected(new Set());
            if (jobId !== null) onQueued(jobId);
          }}
        />
      )}
    </Card>
  );
}

interface ConfirmActionProps {
  action: WasteAction;
  ids: string[];
  labels: string[];
  monthly: number;
  onClose: () => void;
  /** With the queued job's id, or null when nothing was queued (authorize). */
  onDone: (jobId: string | null) => void;
}

const SHOWN = 8;

function ConfirmAction({ action, ids, labels, monthly, onClose, onDone }: ConfirmActionProps) {
  const [dryRun, setDryRun] = useState(false);
  const batch = useWasteBatch();
  const authorize = useAuthorizeInstances();
  const toast = useToast();
  const busy = batch.isPending || authorize.isPending;
  const error = batch.error ?? authorize.error;

  const confirm = () => {
    if (action.kind === 'authorize') {
      authorize.mutate(ids, {
        onSuccess: (result) => {
          toast.success(`${plural(result.authorized, 'instance')} authorized: kept and removed from the waste list.`);
          onDone(null);
        },
      });
      return;
    }
    batch.mutate({ kind: action.kind, ids, dryRun }, { onSuccess: (job) => onDone(job.id) });
  };

  return (
    <Modal
      open
      onClose={busy ? () => undefined : onClose}
      title={action.title(ids.length)}
      description={action.explanation}
      footer={
        <>
          <Button onClick={onClose} disabled={busy}>
            Cancel
          </Button>
          <Button variant={action.danger && !dryRun ? 'danger' : 'primary'} loading={busy} onClick={confirm}>
            {action.kind === 'authorize' ? 'Authorize' : dryRun ? 'Start dry run' : action.label}
          </Button>
        </>
      }
    >
      <div className="stack stack--tight">
        <ul className="mono" aria-label="Selected resources">
          {labels.slice(0, SHOWN).map((name) => (
            <li key={name}>{name}</li>
          ))}
          {labels.length > SHOWN && <li className="muted">and {labels.length - SHOWN} more</li>}
        </ul>
        {action.kind !== 'authorize' && (
          <>
            <p>
              Up to <strong>{formatUsdCents(monthly)}</strong> per month saved.
            </p>
            <CheckboxField
              label="Dry run"
              hint="Check every item and validate each call with AWS, without changing anything."
              checked={dryRun}
              onChange={(event) => setDryRun(event.target.checked)}
            />
          </>
        )}
        {error && (
          <p className="field__error" role="alert">
            {errorMessage(error)}
          </p>
        )}
      </div>
    </Modal>
  );
}

const ITEM_STATUS: Record<string, { label: string; tone: BadgeTone }> = {
  queued: { label: 'Queued', tone: 'neutral' },
  running: { label: 'Running', tone: 'info' },
  done: { label: 'Done', tone: 'success' },
  failed: { label: 'Failed', tone: 'danger' },
  skipped: { label: 'Skipped', tone: 'warning' },
};

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** What an item did, in a line: its safety snapshot, what a dry run would do, or why it was skipped or failed. */
function itemDetail(item: JobItem): string {
  const result = typeof item.result === 'object' && item.result !== null ? (item.result as Record<string, unknown>) : {};
  const parts: string[] = [];
  const snapshot = str(result.snapshot_id);
  if (snapshot) parts.push(`Snapshot ${snapshot}${result.snapshot_completed === true ? ' (completed)' : item.status === 'running' ? ' (completing…)' : ''}`);
  if (Array.isArray(result.would)) parts.push(...result.would.flatMap((line) => str(line) ?? []).map((line) => `Would: ${line}`));
  // Transient errors (throttling, a provider or database outage) are retried with backoff.
  if (typeof result.retries === 'number' && result.retries > 0) parts.push(`Retried ${result.retries}× after transient errors`);
  // A permission error stops the whole batch: the items after it are not started.
  if (item.error) parts.push(result.error_class === 'job' ? `Batch aborted: ${item.error}` : item.error);
  return parts.join(' · ');
}

const itemColumns: Column<JobItem>[] = [
  { key: 'resource', header: 'Resource', render: (item) => <span className="mono">{item.key}</span> },
  {
    key: 'status',
    header: 'Status',
    render: (item) => {
      const badge = ITEM_STATUS[item.status] ?? { label: item.status, tone: 'neutral' as BadgeTone };
      return <Badge tone={badge.tone}>{badge.label}</Badge>;
    },
  },
  { key: 'detail', header: 'Details', render: (item) => <span className={item.status === 'failed' ? 'field__error' : 'muted'}>{itemDetail(item) || '—'}</span> },
  {
    key: 'saving',
    header: 'Saving / month',
    align: 'right',
    render: (item) => {
      const result = typeof item.result === 'object' && item.result !== null ? (item.result as Record<string, unknown>) : {};
      const would = typeof result.would_save === 'number' ? result.would_save : undefined;
      if (item.status !== 'done') return <span className="muted">—</span>;
      return would !== undefined && item.monthly_saving === 0 ? `${formatUsdCents(would)} (dry run)` : formatUsdCents(item.monthly_saving);
    },
  },
];

/** The batch queued from this page: live status, per-item progress and results, and cancel. */
function BatchPanel({ jobId, onDismiss }: { jobId: string; onDismiss: () => void }) {
  const job = useJob(jobId);
  const status = job.data?.status;
  const items = useJobItems(jobId, status);
  const cancel = useCancelJob(jobId);
  const queryClient = useQueryClient();
  const finished = isFinished(status);
  const refetchItems = items.refetch;

  useEffect(() => {
    if (!finished) return;
    // The batch changed the account: the lists re-read, and the items show their final state.
    void queryClient.invalidateQueries({ queryKey: wasteKey });
    void refetchItems();
  }, [finished, queryClient, refetchItems]);

  const list = items.data?.items ?? [];
  const count = (s: string) => list.filter((item) => item.status === s).length;
  const saved = list.filter((item) => item.status === 'done').reduce((sum, item) => sum + item.monthly_saving, 0);
  const badge = status ? jobStatus(status) : null;
  const dryRun = job.data?.dry_run === true || job.data?.safe_mode === true;
  const kind = job.data ? (BATCH_LABEL[job.data.kind] ?? job.data.kind) : 'Batch';

  return (
    <Card
      title={
        <div>
          <h2>
            {kind}
            {dryRun && ' (dry run)'}
          </h2>
          <p className="muted">
            {job.data?.message ?? (status === 'running' ? 'Working through the selected items…' : 'Waiting for a worker…')}
          </p>
        </div>
      }
      actions={
        <div className="row">
          {badge && <Badge tone={badge.tone}>{badge.label}</Badge>}
          {!finished && job.data && (
            <Button size="sm" variant="danger" loading={cancel.isPending} onClick={() => cancel.mutate()}>
              Cancel batch
            </Button>
          )}
          {finished && (
            <Button size="sm" variant="ghost" onClick={onDismiss}>
              Dismiss
            </Button>
          )}
        </div>
      }
    >
      <div className="stack stack--tight">
        <progress className={status === 'failed' ? 'progress progress--error' : 'progress'} max={100} value={job.data?.progress ?? 0} aria-label="Batch progress" />
        <p role="status">
          {count('done')} done · {count('skipped')} skipped · {count('failed')} failed · {list.length - count('done') - count('skipped') - count('failed')} pending
          {!dryRun && ` · ${formatUsdCents(saved)}/month saved`}
        </p>
        {cancel.isError && (
          <p className="field__error" role="alert">
            {errorMessage(cancel.error)}
          </p>
        )}
        {items.isError && <ErrorState error={items.error} title="Could not load the batch items" onRetry={() => void items.refetch()} />}
        {list.length > 0 && <Table caption="Batch items" columns={itemColumns} rows={list} rowKey={(item) => item.key} />}
      </div>
    </Card>
  );
}

const accountColumn = <T extends { account_id: string }>(names: AccountNames): Column<T> => ({
  key: 'account',
  header: 'Account',
  render: (row) => names.get(row.account_id) ?? <span className="mono">{row.account_id.slice(0, 8)}</span>,
});

const costColumn = <T extends { monthly_cost: number }>(): Column<T> => ({
  key: 'cost',
  header: 'Monthly cost',
  align: 'right',
  render: (row) => formatUsdCents(row.monthly_cost),
});

const dateOrDash = (iso: string | null | undefined) => (iso != null ? formatDate(iso) : '—');

// InstanceSummary carries no account id, so this table has no Account column.
const instanceColumns: Column<InstanceSummary>[] = [
  { key: 'instance', header: 'Instance', render: (instance) => <span className="mono">{instance.instance_id}</span> },
  { key: 'type', header: 'Type', render: (instance) => <span className="mono">{instance.instance_type}</span> },
  { key: 'lifecycle', header: 'Lifecycle', render: (instance) => <Badge tone={lifecycleTone(instance.lifecycle)}>{lifecycleLabel(instance.lifecycle)}</Badge> },
  { key: 'az', header: 'AZ', render: (instance) => instance.az },
  { key: 'state', header: 'State', render: (instance) => instance.state },
  { key: 'launched', header: 'Launched', render: (instance) => dateOrDash(instance.launched_at) },
  costColumn(),
];

const volumeColumns = (names: AccountNames): Column<OrphanedVolume>[] => [
  { key: 'volume', header: 'Volume', render: (volume) => <span className="mono">{volume.volume_id}</span> },
  accountColumn(names),
  { key: 'type', header: 'Type', render: (volume) => volume.volume_type },
  { key: 'size', header: 'Size', align: 'right', render: (volume) => `${volume.size_gib.toLocaleString()} GiB` },
  { key: 'created', header: 'Created', render: (volume) => dateOrDash(volume.created_at) },
  { key: 'attached', header: 'Last attached', render: (volume) => dateOrDash(volume.last_attached_at) },
  costColumn(),
];

const snapshotColumns = (names: AccountNames): Column<UnusedSnapshot>[] => [
  { key: 'snapshot', header: 'Snapshot', render: (snapshot) => <span className="mono">{snapshot.snapshot_id}</span> },
  accountColumn(names),
  { key: 'volume', header: 'Source volume', render: (snapshot) => <span className="mono">{snapshot.volume_id ?? '—'}</span> },
  { key: 'size', header: 'Size', align: 'right', render: (snapshot) => `${snapshot.size_gib.toLocaleString()} GiB` },
  { key: 'age', header: 'Age', align: 'right', render: (snapshot) => `${snapshot.age_days.toLocaleString()} d` },
  { key: 'started', header: 'Taken', render: (snapshot) => dateOrDash(snapshot.started_at) },
  costColumn(),
];
