import { useState } from 'react';
import { Link, useParams, useSearchParams } from 'react-router-dom';
import { clusterAgentStatus, clusterLastHeartbeat, type AgentStatus } from '../../api/agent';
import { ApiError } from '../../api/errors';
import type { ClusterSummary, InstanceSummary, NodeGroup } from '../../api/types';
import { canManageOrg, useMe } from '../../auth/MeContext';
import { Badge, Button, Card, EmptyState, ErrorState, Meter, SkeletonRows, Table, type Column, type MeterTone } from '../../components';
import { PageHeader } from '../../layout/PageHeader';
import { formatCores, formatDateTime, formatHourly, formatMemory, formatPercent, formatUsd, formatUsdCents } from '../../lib/format';
import { AgentBadge } from './AgentBadge';
import { AgentCard, AgentCommandsCard } from './AgentCard';
import { activeSafeMode, useAgent } from './agent';
import { useCluster } from './api';
import { lifecycleLabel, lifecycleTone } from './format';
import { CostTrend, CountSparkline, EolBadge, GradeBadge, HealthGauge, RiskBadge } from './indicators';
import { InstanceModal } from './InstanceModal';
import { JobPanel } from './JobPanel';
import { JobsCard } from './JobsCard';
import { isFinished, useJobs } from './jobs';
import { OptimizeModal } from './OptimizeModal';
import { ForceOnDemandModal, OverridesCard } from './ForceOnDemand';
import { PolicyCard } from './PolicyCard';

/**
 * `?optimize=1` opens the Optimize Now dialog (the registry links here with it); `?job=<id>`
 * shows that job in the panel. Without `?job`, the cluster's newest job shows while it runs.
 */
function useOptimizeView(clusterId: string) {
  const [params, setParams] = useSearchParams();
  const jobs = useJobs();
  const requested = params.get('job');
  const newest = jobs.data?.items.find((job) => job.target_id === clusterId);
  const running = newest !== undefined && !isFinished(newest.status) ? newest.id : null;
  const update = (changes: Record<string, string | null>) =>
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        for (const [key, value] of Object.entries(changes)) {
          if (value === null) next.delete(key);
          else next.set(key, value);
        }
        return next;
      },
      { replace: true },
    );
  return {
    optimizing: params.get('optimize') === '1',
    jobId: requested === '' ? null : (requested ?? running),
    openOptimize: () => update({ optimize: '1' }),
    closeOptimize: () => update({ optimize: null }),
    showJob: (id: string) => update({ optimize: null, job: id }),
    // Without `?job` a running job would come straight back: `?job=` pins "none".
    closeJob: () => update({ job: '' }),
  };
}

export function ClusterDetailPage() {
  const { id = '' } = useParams();
  const detail = useCluster(id);
  const [selected, setSelected] = useState<InstanceSummary | null>(null);
  const [forcing, setForcing] = useState(false);
  const canManage = canManageOrg(useMe());
  const view = useOptimizeView(id);

  const back = (
    <Link to="/clusters" className="back-link">
      ← All clusters
    </Link>
  );

  if (detail.isPending) {
    return (
      <>
        {back}
        <PageHeader title="Cluster" />
        <Card>
          <SkeletonRows label="Loading cluster" />
        </Card>
      </>
    );
  }
  if (detail.isError) {
    const notFound = detail.error instanceof ApiError && detail.error.status === 404;
    return (
      <>
        {back}
        <PageHeader title="Cluster" />
        <Card>
          {notFound ? (
            <EmptyState title="Cluster not found" description="It may have been deleted, or its account disconnected." />
          ) : (
            <ErrorState error={detail.error} title="Could not load this cluster" onRetry={() => void detail.refetch()} />
          )}
        </Card>
      </>
    );
  }

  const { cluster, node_groups: nodeGroups, nodes } = detail.data;
  // Servers without the agent API report no agent status: no agent badge or card then.
  const agentStatus = clusterAgentStatus(cluster);
  return (
    <>
      {back}
      <PageHeader
        title={cluster.name}
        subtitle={
          <span className="row row--wrap">
            <span>
              {cluster.account_name} · {cluster.region}
              {cluster.environment != null && ` · ${cluster.environment}`} · Kubernetes {cluster.kubernetes_version ?? 'unknown'}
            </span>
            {cluster.end_of_life && <EolBadge />}
            {cluster.status !== 'active' && <Badge tone="warning">Control plane {cluster.status}</Badge>}
            {agentStatus !== null && <HeaderAgentBadge cluster={cluster} status={agentStatus} canInstall={canManage} />}
          </span>
        }
        actions={
          canManage ? (
            <>
              <Button variant="secondary" onClick={() => setForcing(true)}>
                Force on-demand
              </Button>
              <Button variant="primary" onClick={view.openOptimize}>
                Optimize Now
              </Button>
            </>
          ) : undefined
        }
      />
      <div className="stack">
        {view.jobId !== null && <JobPanel key={view.jobId} jobId={view.jobId} onDismiss={view.closeJob} canCancel={canManage} />}
        <OverridesCard clusterId={cluster.id} canManage={canManage} />
        <Kpis cluster={cluster} />
        <Efficiency cluster={cluster} />
        <Card title="Node groups" flush>
          {nodeGroups.length === 0 ? (
            <p className="muted card__empty">This cluster reports no managed node groups.</p>
          ) : (
            <Table caption="Node groups" columns={nodeGroupColumns} rows={nodeGroups} rowKey={(group) => group.name} />
          )}
        </Card>
        <Card title={`Nodes (${nodes.length})`} flush>
          {nodes.length === 0 ? (
            <p className="muted card__empty">No nodes are running in this cluster.</p>
          ) : (
            <Table
              caption="Nodes"
              columns={nodeColumns}
              rows={nodes}
              rowKey={(node) => node.id}
              onRowClick={setSelected}
              rowLabel={(node) => `${node.instance_id}, ${node.instance_type} ${lifecycleLabel(node.lifecycle)}, open instance details`}
            />
          )}
        </Card>
        {agentStatus !== null && <AgentCard clusterId={cluster.id} clusterName={cluster.name} canManage={canManage} />}
        <PolicyCard clusterId={cluster.id} canEdit={canManage} />
        <JobsCard clusterId={cluster.id} selectedId={view.jobId} onOpen={(job) => view.showJob(job.id)} />
        {agentStatus !== null && agentStatus !== 'not_installed' && <AgentCommandsCard clusterId={cluster.id} />}
      </div>
      <InstanceModal instance={selected} onClose={() => setSelected(null)} canManage={canManage} onForced={(started) => started.jobs[0] && view.showJob(started.jobs[0].id)} />
      {canManage && (
        <ForceOnDemandModal
          target={{ scope: 'cluster', id: cluster.id, label: cluster.name, nodes: nodes.length }}
          open={forcing}
          onClose={() => setForcing(false)}
          onStarted={(started) => started.jobs[0] && view.showJob(started.jobs[0].id)}
        />
      )}
      {canManage && <OptimizeModal cluster={cluster} open={view.optimizing} onClose={view.closeOptimize} onStarted={(job) => view.showJob(job.id)} />}
    </>
  );
}

/** The agent's badge in the header: the live agent status once read, the cluster's until then. */
function HeaderAgentBadge({ cluster, status, canInstall }: { cluster: ClusterSummary; status: AgentStatus; canInstall: boolean }) {
  const agent = useAgent(cluster.id);
  return (
    <AgentBadge
      clusterId={cluster.id}
      clusterName={cluster.name}
      status={agent.data?.status ?? status}
      lastHeartbeatAt={agent.data ? agent.data.last_heartbeat_at : clusterLastHeartbeat(cluster)}
      safeMode={activeSafeMode(agent.data) !== null}
      canInstall={canInstall}
    />
  );
}

function Kpis({ cluster }: { cluster: ClusterSummary }) {
  const savings = cluster.monthly_on_demand_equivalent - cluster.monthly_run_rate;
  const savingsShare = cluster.monthly_on_demand_equivalent > 0 ? savings / cluster.monthly_on_demand_equivalent : 0;
  return (
    <dl className="stats stats--5">
      <div className="stat">
        <dt className="stat__label">Monthly run rate</dt>
        <dd className="stat__value row row--baseline row--wrap">
          <span>{formatUsd(cluster.monthly_run_rate)}</span>
          <CostTrend trend={cluster.trend_24h} />
        </dd>
        <dd className="stat__note">{formatUsd(cluster.monthly_on_demand_equivalent)} at On-Demand prices</dd>
      </div>
      <div className="stat">
        <dt className="stat__label">Savings already captured</dt>
        <dd className="stat__value stat__value--success">{formatUsd(savings)}</dd>
        <dd className="stat__note">{formatPercent(savingsShare)} below On-Demand, per month</dd>
      </div>
      <div className="stat">
        <dt className="stat__label">Spot share</dt>
        <dd className="stat__value">{formatPercent(cluster.spot_share)}</dd>
        <dd>
          <Meter label="Spot share" value={cluster.spot_share} tone="success" />
        </dd>
      </div>
      <div className="stat">
        <dt className="stat__label">Nodes</dt>
        <dd className="stat__value stat__spark">
          <span>{cluster.node_count.toLocaleString()}</span>
          <CountSparkline values={cluster.trend_24h?.nodes} noun="Nodes" width={64} height={24} />
        </dd>
        <dd className="stat__note">{cluster.pod_count.toLocaleString()} pods · 24 h trend</dd>
      </div>
      <div className="stat stat--gauge">
        <dt className="stat__label">Health</dt>
        <dd className="stat__gauge">
          <HealthGauge score={cluster.health_score} size={52} />
        </dd>
        <dd className="stat__note">Last sync {formatDateTime(cluster.last_sync)}</dd>
      </div>
    </dl>
  );
}

/** Packing above 100% means requests exceed what the nodes can allocate. */
function usageTone(ratio: number): MeterTone {
  if (ratio > 1) return 'danger';
  return ratio < 0.5 ? 'warning' : 'primary';
}

function Ratio({ label, part, whole, format }: { label: string; part: number; whole: number; format: (value: number) => string }) {
  const ratio = whole > 0 ? part / whole : 0;
  return (
    <div className="ratio">
      <div className="row row--between">
        <span>{label}</span>
        <span className="muted nowrap">
          {format(part)} / {format(whole)} · <strong>{formatPercent(ratio)}</strong>
        </span>
      </div>
      <Meter label={label} value={ratio} tone={usageTone(ratio)} />
    </div>
  );
}

function Efficiency({ cluster }: { cluster: ClusterSummary }) {
  const cores = (millicores: number) => `${formatCores(millicores)} vCPU`;
  return (
    <Card
      title={
        <div className="row">
          <h2>Efficiency</h2>
          <GradeBadge grade={cluster.efficiency_grade} />
          {cluster.efficiency_score != null && <span className="muted">score {formatPercent(cluster.efficiency_score)}</span>}
        </div>
      }
    >
      {cluster.efficiency_grade == null ? (
        <p className="muted">No pod requests or usage reported for this cluster yet, so it has no grade.</p>
      ) : (
        <div className="ratios">
          <Ratio label="CPU requested / allocatable" part={cluster.cpu_requested_millicores} whole={cluster.cpu_allocatable_millicores} format={cores} />
          <Ratio label="CPU used / requested" part={cluster.cpu_used_millicores} whole={cluster.cpu_requested_millicores} format={cores} />
          <Ratio label="Memory requested / allocatable" part={cluster.memory_requested_mib} whole={cluster.memory_allocatable_mib} format={formatMemory} />
          <Ratio label="Memory used / requested" part={cluster.memory_used_mib} whole={cluster.memory_requested_mib} format={formatMemory} />
        </div>
      )}
    </Card>
  );
}

const CAPACITY_LABEL: Record<string, string> = { SPOT: 'Spot', ON_DEMAND: 'On-Demand' };

const nodeGroupColumns: Column<NodeGroup>[] = [
  { key: 'name', header: 'Name', render: (group) => <span className="cell-title">{group.name}</span> },
  {
    key: 'capacity',
    header: 'Capacity',
    render: (group) => (
      // The API has reported both `SPOT` (EKS) and `spot` spellings.
      <Badge tone={group.capacity_type.toUpperCase() === 'SPOT' ? 'success' : 'info'}>
        {CAPACITY_LABEL[group.capacity_type.toUpperCase()] ?? (group.capacity_type || '—')}
      </Badge>
    ),
  },
  { key: 'types', header: 'Instance types', render: (group) => <span className="mono">{group.instance_types.join(', ') || '—'}</span> },
  { key: 'desired', header: 'Desired', align: 'right', render: (group) => group.desired },
  { key: 'range', header: 'Min – max', align: 'right', render: (group) => `${group.min} – ${group.max}` },
];

const nodeColumns: Column<InstanceSummary>[] = [
  {
    key: 'instance',
    header: 'Instance',
    render: (node) => (
      <div className="cell-stack">
        <span className="mono">{node.instance_id}</span>
        <span className="muted">{node.node_group ?? 'No node group'}</span>
      </div>
    ),
  },
  { key: 'type', header: 'Type', render: (node) => <span className="mono">{node.instance_type}</span> },
  {
    key: 'lifecycle',
    header: 'Lifecycle / risk',
    render: (node) => (
      <div className="cell-stack cell-stack--start">
        <Badge tone={lifecycleTone(node.lifecycle)}>{lifecycleLabel(node.lifecycle)}</Badge>
        {node.lifecycle === 'spot' &&
          (node.risk_band != null ? (
            <RiskBadge band={node.risk_band} probability={node.interruption_probability} model={node.risk_model} />
          ) : (
            <span className="muted">Risk not scored</span>
          ))}
      </div>
    ),
  },
  {
    key: 'pool',
    header: 'Pool',
    render: (node) => (
      <div className="cell-stack">
        <span className="mono">{node.pool}</span>
        {node.pool_flagged && (
          <span title="Spot interruptions were seen in this pool recently">
            <Badge tone="warning">⚠ Flagged pool</Badge>
          </span>
        )}
      </div>
    ),
  },
  { key: 'state', header: 'State', render: (node) => node.state },
  { key: 'price', header: 'Price / hour', align: 'right', render: (node) => formatHourly(node.hourly_price) },
  { key: 'monthly', header: 'Monthly', align: 'right', render: (node) => formatUsdCents(node.monthly_cost) },
];
