import type { UseQueryResult } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import type { InstanceSummary, OrphanedVolume, UnusedSnapshot } from '../../api/types';
import { Badge, Card, EmptyState, ErrorState, Skeleton, SkeletonRows, Table, type Column } from '../../components';
import { WasteIcon } from '../../components/icons';
import { PageHeader } from '../../layout/PageHeader';
import { formatDate, formatUsd, formatUsdCents } from '../../lib/format';
import { useAccounts } from '../accounts/api';
import { lifecycleLabel, lifecycleTone } from '../clusters/format';
import { useOrphanedVolumes, useUnregisteredInstances, useUnusedSnapshots } from './api';

type AccountNames = Map<string, string>;

export function WastePage() {
  const instances = useUnregisteredInstances();
  const volumes = useOrphanedVolumes();
  const snapshots = useUnusedSnapshots();
  const accounts = useAccounts();
  const names: AccountNames = new Map((accounts.data ?? []).map((account) => [account.id, account.name]));
  const lists = [instances, volumes, snapshots];
  const total = lists.every((list) => list.isSuccess) ? lists.reduce((sum, list) => sum + (list.data?.total_monthly_cost ?? 0), 0) : null;

  return (
    <>
      <PageHeader title="Waste" subtitle="Resources you pay for that no cluster uses. Review them in AWS; nothing is changed from here." />
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
        <WasteTable
          title="Unregistered instances"
          description="EC2 instances that belong to no EKS cluster."
          query={instances}
          columns={instanceColumns}
          rowKey={(instance) => instance.id}
          empty="Every instance belongs to a cluster."
        />
        <WasteTable
          title="Orphaned volumes"
          description="EBS volumes attached to no instance."
          query={volumes}
          columns={volumeColumns(names)}
          rowKey={(volume) => volume.id}
          empty="No unattached volumes."
        />
        <WasteTable
          title="Unused snapshots"
          description="Snapshots whose source volume is gone and that back no image."
          query={snapshots}
          columns={snapshotColumns(names)}
          rowKey={(snapshot) => snapshot.id}
          empty="No unused snapshots."
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
  empty: string;
}

function WasteTable<T>({ title, description, query, columns, rowKey, empty }: WasteTableProps<T>) {
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
          <span className="savings">
            Potential savings <strong>{formatUsd(query.data.total_monthly_cost)}/mo</strong>
          </span>
        )
      }
    >
      {query.isPending && <SkeletonRows rows={3} label={`Loading ${title.toLowerCase()}`} />}
      {query.isError && <ErrorState error={query.error} title={`Could not load ${title.toLowerCase()}`} onRetry={() => void query.refetch()} />}
      {query.isSuccess &&
        (query.data.items.length === 0 ? (
          <EmptyState icon={<WasteIcon size={22} />} title="Nothing to clean up" description={empty} />
        ) : (
          <Table caption={title} columns={columns} rows={query.data.items} rowKey={rowKey} />
        ))}
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
