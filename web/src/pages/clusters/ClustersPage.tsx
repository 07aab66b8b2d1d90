import { useMemo, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import { clusterAgentStatus, clusterLastHeartbeat } from '../../api/agent';
import type { ClusterSummary } from '../../api/types';
import { canManageOrg, useMe } from '../../auth/MeContext';
import {
  Button,
  Card,
  EmptyState,
  ErrorState,
  Meter,
  SelectField,
  Skeleton,
  SkeletonRows,
  Table,
  TextField,
  type Column,
  type SortState,
} from '../../components';
import { ClustersIcon, SearchIcon } from '../../components/icons';
import { PageHeader } from '../../layout/PageHeader';
import { formatCores, formatMemory, formatPercent, formatUsd } from '../../lib/format';
import { CONNECT_ACCOUNT_PATH } from '../accounts/format';
import { useKpis } from '../dashboard/api';
import { AgentBadge } from './AgentBadge';
import { ForceOnDemandModal, OverridesCard } from './ForceOnDemand';
import { ADD_CLUSTER_PATH, useLiveHeartbeats } from './agent';
import { useClusters } from './api';
import { CLUSTER_SORT_KEYS, filterClusters, sortClusters, type ClusterFilters } from './format';
import { CostTrend, CountSparkline, EolBadge, GradeBadge, HealthGauge } from './indicators';

/** Every column after the cluster's name (`clusterColumn`, which carries the agent's badge). */
const columns: Column<ClusterSummary>[] = [
  {
    key: 'region',
    header: 'Region',
    sortable: true,
    render: (cluster) => (
      <div className="cell-stack nowrap">
        <span>{cluster.region}</span>
        <span className="muted">
          {cluster.azs.length} AZ{cluster.azs.length === 1 ? '' : 's'}
        </span>
      </div>
    ),
  },
  {
    key: 'version',
    header: 'Version',
    sortable: true,
    render: (cluster) => (
      <span className="row nowrap">
        {cluster.kubernetes_version ?? '—'}
        {cluster.end_of_life && <EolBadge />}
      </span>
    ),
  },
  {
    key: 'nodes',
    header: 'Nodes / pods',
    sortable: true,
    align: 'right',
    render: (cluster) => (
      // Nodes above pods, as in the header; each count beside its 24-hour sparkline.
      <span className="counts">
        <span>{cluster.node_count.toLocaleString()}</span>
        <CountSparkline values={cluster.trend_24h?.nodes} noun="Nodes" width={48} height={16} />
        <span className="muted">{cluster.pod_count.toLocaleString()}</span>
        <CountSparkline values={cluster.trend_24h?.pods} noun="Pods" width={48} height={16} />
      </span>
    ),
  },
  {
    key: 'cost',
    header: 'Monthly run rate',
    sortable: true,
    render: (cluster) => (
      <div className="cell-stack">
        <span className="row row--baseline nowrap">
          <span className="cell-title">{formatUsd(cluster.monthly_run_rate)}</span>
          <CostTrend trend={cluster.trend_24h} />
        </span>
        <span className="row">
          <Meter label={`${cluster.name} spot share`} value={cluster.spot_share} tone="success" />
          <span className="muted nowrap">{formatPercent(cluster.spot_share)} spot</span>
        </span>
      </div>
    ),
  },
  {
    key: 'efficiency',
    header: 'Efficiency',
    sortable: true,
    render: (cluster) => <GradeBadge grade={cluster.efficiency_grade} />,
  },
  {
    key: 'health',
    header: 'Health',
    sortable: true,
    render: (cluster) => <HealthGauge score={cluster.health_score} size={36} />,
  },
];

/** Owners and admins get an "Optimize Now" shortcut: the detail page with its dialog open. */
const optimizeColumn: Column<ClusterSummary> = {
  key: 'optimize',
  header: <span className="sr-only">Actions</span>,
  align: 'right',
  render: (cluster) => (
    <Link
      to={`/clusters/${encodeURIComponent(cluster.id)}?optimize=1`}
      className="btn btn--secondary btn--sm nowrap"
      aria-label={`Optimize Now: ${cluster.name} in ${cluster.account_name}`}
      // The row itself opens the detail page without the dialog.
      onClick={(event) => event.stopPropagation()}
    >
      Optimize Now
    </Link>
  ),
};

/** The later of the server's last heartbeat and one seen live in this tab. */
function latest(a: string | null | undefined, b: string | null | undefined): string | null {
  if (a == null) return b ?? null;
  if (b == null) return a;
  return new Date(a).getTime() >= new Date(b).getTime() ? a : b;
}

/** The in-cluster agent's badge under the cluster's name; "Install agent" links for owners and admins. */
function ClusterAgent({ cluster, canInstall, heartbeats }: { cluster: ClusterSummary; canInstall: boolean; heartbeats: Record<string, string> }) {
  const status = clusterAgentStatus(cluster);
  if (status === null) return null;
  return (
    <AgentBadge
      clusterId={cluster.id}
      clusterName={cluster.name}
      status={status}
      lastHeartbeatAt={latest(clusterLastHeartbeat(cluster), heartbeats[cluster.id])}
      canInstall={canInstall}
      inRow
    />
  );
}

/** The cluster column with the agent's status (the table is too wide at 1280 px for a column of its own). */
function clusterColumn(canInstall: boolean, heartbeats: Record<string, string>): Column<ClusterSummary> {
  return {
    key: 'name',
    header: 'Cluster',
    sortable: true,
    render: (cluster) => (
      <div className="cell-stack cell-stack--start">
        <span className="cell-title">{cluster.name}</span>
        <span className="muted">{cluster.account_name}</span>
        <ClusterAgent cluster={cluster} canInstall={canInstall} heartbeats={heartbeats} />
      </div>
    ),
  };
}

const DEFAULT_SORT: SortState = { key: 'name', direction: 'asc' };

/** Filters and sort live in the URL (`?q=&env=&account=&cost=high&eol=1&sort=-cost`). */
function useClusterView() {
  const [params, setParams] = useSearchParams();
  const sort = useMemo<SortState>(() => {
    const raw = params.get('sort') ?? '';
    const key = raw.replace(/^-/, '');
    return (CLUSTER_SORT_KEYS as readonly string[]).includes(key) ? { key, direction: raw.startsWith('-') ? 'desc' : 'asc' } : DEFAULT_SORT;
  }, [params]);
  const filters = useMemo<ClusterFilters>(
    () => ({
      q: params.get('q') ?? '',
      environment: params.get('env') ?? '',
      accountId: params.get('account') ?? '',
      highCost: params.get('cost') === 'high',
      eolOnly: params.get('eol') === '1',
    }),
    [params],
  );
  const update = (changes: Record<string, string | null>) =>
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        for (const [key, value] of Object.entries(changes)) {
          if (value === null || value === '') next.delete(key);
          else next.set(key, value);
        }
        return next;
      },
      { replace: true },
    );
  return {
    sort,
    filters,
    setSort: (next: SortState) =>
      update({ sort: next.key === DEFAULT_SORT.key && next.direction === 'asc' ? null : `${next.direction === 'desc' ? '-' : ''}${next.key}` }),
    setFilter: (key: 'q' | 'env' | 'account' | 'cost' | 'eol', value: string | null) => update({ [key]: value }),
    clearFilters: () => update({ q: null, env: null, account: null, cost: null, eol: null }),
  };
}

export function ClustersPage() {
  const clusters = useClusters();
  const me = useMe();
  const canManage = canManageOrg(me);
  const [forcing, setForcing] = useState(false);
  const count = clusters.data?.items.length ?? 0;
  return (
    <>
      <PageHeader
        title="Clusters"
        subtitle="Every EKS cluster discovered in your connected accounts."
        actions={
          canManage ? (
            <>
              {count > 0 && (
                <Button variant="secondary" onClick={() => setForcing(true)}>
                  Force all to on-demand
                </Button>
              )}
              <Link to={ADD_CLUSTER_PATH} className="btn btn--primary">
                + Add cluster
              </Link>
            </>
          ) : undefined
        }
      />
      {canManage && (
        <ForceOnDemandModal
          target={{ scope: 'organization', label: me.organization.name, clusters: count }}
          open={forcing}
          onClose={() => setForcing(false)}
        />
      )}
      <OverridesCard canManage={canManage} />
      {clusters.isPending && <ClustersSkeleton />}
      {clusters.isError && (
        <Card>
          <ErrorState error={clusters.error} title="Could not load clusters" onRetry={() => void clusters.refetch()} />
        </Card>
      )}
      {clusters.isSuccess &&
        (clusters.data.items.length === 0 ? (
          <Card>
            <NoClusters />
          </Card>
        ) : (
          <ClusterRegistry clusters={clusters.data.items} totalRunRate={clusters.data.total_monthly_run_rate} />
        ))}
    </>
  );
}

function ClustersSkeleton() {
  return (
    <div className="stack">
      <div className="stats stats--5" aria-hidden="true">
        {Array.from({ length: 5 }, (_, index) => (
          <div key={index} className="stat">
            <Skeleton width="60%" height={12} />
            <Skeleton width="80%" height={28} />
          </div>
        ))}
      </div>
      <Card flush>
        <SkeletonRows label="Loading clusters" />
      </Card>
    </div>
  );
}

function NoClusters() {
  const canConnect = canManageOrg(useMe());
  return (
    <EmptyState
      icon={<ClustersIcon size={22} />}
      title="No clusters yet"
      description={
        canConnect
          ? 'Clusters appear here once a connected AWS account has been scanned and EKS clusters were found in it.'
          : 'Clusters appear here once a connected AWS account has been scanned. Ask an owner or admin of your organization to connect one.'
      }
      action={
        canConnect && (
          <Link to={CONNECT_ACCOUNT_PATH} className="btn btn--primary">
            Connect AWS account
          </Link>
        )
      }
    />
  );
}

function ClusterRegistry({ clusters, totalRunRate }: { clusters: ClusterSummary[]; totalRunRate: number }) {
  const navigate = useNavigate();
  const canOptimize = canManageOrg(useMe());
  const heartbeats = useLiveHeartbeats();
  const view = useClusterView();
  const rows = useMemo(() => sortClusters(filterClusters(clusters, view.filters), view.sort), [clusters, view.filters, view.sort]);
  const environments = useMemo(() => [...new Set(clusters.flatMap((cluster) => cluster.environment ?? []))].sort(), [clusters]);
  const accounts = useMemo(
    () => [...new Map(clusters.map((cluster) => [cluster.account_id, cluster.account_name])).entries()].sort((a, b) => a[1].localeCompare(b[1])),
    [clusters],
  );
  const tableColumns = [clusterColumn(canOptimize, heartbeats), ...columns, ...(canOptimize ? [optimizeColumn] : [])];
  const { filters } = view;
  const filtered = filters.q !== '' || filters.environment !== '' || filters.accountId !== '' || filters.highCost || filters.eolOnly;

  return (
    <div className="stack">
      <StatusBar clusters={clusters} totalRunRate={totalRunRate} />
      <Card>
        <form className="filters filters--clusters" role="search" aria-label="Filter clusters" onSubmit={(event) => event.preventDefault()}>
          <TextField
            label="Search"
            type="search"
            placeholder="Name, region or account"
            value={filters.q}
            onChange={(event) => view.setFilter('q', event.target.value)}
          />
          <SelectField label="Environment" value={filters.environment} onChange={(event) => view.setFilter('env', event.target.value)}>
            <option value="">All environments</option>
            {environments.map((environment) => (
              <option key={environment} value={environment}>
                {environment}
              </option>
            ))}
          </SelectField>
          <SelectField label="Account" value={filters.accountId} onChange={(event) => view.setFilter('account', event.target.value)}>
            <option value="">All accounts</option>
            {accounts.map(([id, name]) => (
              <option key={id} value={id}>
                {name}
              </option>
            ))}
          </SelectField>
          <div className="row toggles" role="group" aria-label="Quick filters">
            <button
              type="button"
              className="chip"
              aria-pressed={filters.highCost}
              title="Monthly run rate above the median cluster"
              onClick={() => view.setFilter('cost', filters.highCost ? null : 'high')}
            >
              High cost
            </button>
            <button type="button" className="chip" aria-pressed={filters.eolOnly} onClick={() => view.setFilter('eol', filters.eolOnly ? null : '1')}>
              EOL only
            </button>
            {filtered && (
              <Button variant="ghost" size="sm" onClick={view.clearFilters}>
                Clear
              </Button>
            )}
          </div>
        </form>
      </Card>
      <Card flush>
        <p className="sr-only" role="status">
          {filtered ? `${rows.length} of ${clusters.length} clusters shown` : ''}
        </p>
        {rows.length === 0 ? (
          <EmptyState
            icon={<SearchIcon size={22} />}
            title="No clusters match"
            description="Change the search or clear the filters."
            action={<Button onClick={view.clearFilters}>Clear filters</Button>}
          />
        ) : (
          <Table
            caption="Clusters"
            columns={tableColumns}
            rows={rows}
            rowKey={(cluster) => cluster.id}
            sort={view.sort}
            onSortChange={view.setSort}
            onRowClick={(cluster) => navigate(`/clusters/${encodeURIComponent(cluster.id)}`)}
            rowLabel={(cluster) => `${cluster.name} in ${cluster.account_name}, open cluster details`}
          />
        )}
      </Card>
    </div>
  );
}

/** Totals across every cluster, whatever the filters. */
function StatusBar({ clusters, totalRunRate }: { clusters: ClusterSummary[]; totalRunRate: number }) {
  const sum = (pick: (cluster: ClusterSummary) => number) => clusters.reduce((total, cluster) => total + pick(cluster), 0);
  // The server grades the fleet (the dashboard's numbers for every account); the page never
  // recomputes a grade from the cluster scores.
  const kpis = useKpis(undefined);
  return (
    <section aria-label="All clusters">
      <dl className="stats stats--5">
        <div className="stat">
          <dt className="stat__label">Clusters</dt>
          <dd className="stat__value">{clusters.length.toLocaleString()}</dd>
        </div>
        <div className="stat">
          <dt className="stat__label">vCPU allocatable</dt>
          <dd className="stat__value">{formatCores(sum((cluster) => cluster.cpu_allocatable_millicores))}</dd>
        </div>
        <div className="stat">
          <dt className="stat__label">Memory allocatable</dt>
          <dd className="stat__value">{formatMemory(sum((cluster) => cluster.memory_allocatable_mib))}</dd>
        </div>
        <div className="stat">
          <dt className="stat__label">Efficiency</dt>
          <dd className="stat__value row">
            {kpis.data === undefined && !kpis.isError ? (
              <Skeleton width="60%" height={24} />
            ) : (
              <>
                <GradeBadge grade={kpis.data?.efficiency_grade} />
                {kpis.data?.efficiency_score != null && <span className="stat__note">{formatPercent(kpis.data.efficiency_score)}</span>}
              </>
            )}
          </dd>
          <dd className="stat__note">{kpis.isError && kpis.data === undefined ? 'Efficiency unavailable' : 'Weighted by node count'}</dd>
        </div>
        <div className="stat">
          <dt className="stat__label">Monthly run rate</dt>
          <dd className="stat__value">{formatUsd(totalRunRate)}</dd>
        </div>
      </dl>
    </section>
  );
}
