import type { UseQueryResult } from '@tanstack/react-query';
import { useId, useMemo, useState, type ReactNode } from 'react';
import { useSearchParams } from 'react-router-dom';
import type { Account, DashboardKpis, FleetComposition, Heatmap, ResourceGap, SavingsSeries, ScanCounts, Stability } from '../../api/types';
import { ActivityHeatmap, Card, ErrorState, Meter, Skeleton, SkeletonRows, StabilityGauge, STABILITY_THRESHOLD, stabilityTone, summarizeActivity } from '../../components';
import { PageHeader } from '../../layout/PageHeader';
import { formatPercent, formatUsd, formatUsdCents } from '../../lib/format';
import { useAccounts, useScanStatuses } from '../accounts/api';
import { GradeBadge } from '../clusters/indicators';
import { AccountSwitcher, useAccountScope } from '../common/AccountSwitcher';
import { NoCloudAccountState } from '../common/NoCloudAccountState';
import { DEFAULT_RANGE, RANGES, type RangeDays, type Scope, useFleet, useHeatmap, useKpis, useResourceGap, useSavingsSeries, useStability } from './api';
import { ChartFigure, FleetChart, ResourceGapChart, SavingsChart } from './ChartFigure';
import {
  familyColor,
  formatResource,
  gapData,
  groupFleet,
  lifecycleColor,
  lifecycleName,
  mean,
  savingsData,
  stabilityComponentName,
  type Resource,
} from './format';

const SUBTITLE = 'Spend, waste and savings opportunities across your clusters. Read-only: every saving shown is a potential, not an action.';

export function DashboardPage() {
  const accounts = useAccounts();
  if (accounts.isSuccess && accounts.data.length > 0) return <Dashboard accounts={accounts.data} />;
  return (
    <>
      <PageHeader title="Dashboard" subtitle={SUBTITLE} />
      {accounts.isPending && (
        <Card>
          <SkeletonRows rows={3} label="Loading your accounts" />
        </Card>
      )}
      {accounts.isError && (
        <Card>
          <ErrorState error={accounts.error} onRetry={() => void accounts.refetch()} />
        </Card>
      )}
      {accounts.isSuccess && (
        <Card>
          <NoCloudAccountState description="Connect an AWS account to see your monthly run rate, bin-packing waste and potential Spot savings." />
        </Card>
      )}
    </>
  );
}

const RANGE_LABEL: Record<RangeDays, string> = { 1: '24 h', 7: '7 days', 14: '14 days' };
const RANGE_PARAM = 'days';

/** Chart window in the URL (`?days=1|7|14`, 7 by default). */
function useRange(): [RangeDays, (days: RangeDays) => void] {
  const [params, setParams] = useSearchParams();
  const raw = Number(params.get(RANGE_PARAM));
  const days = (RANGES as readonly number[]).includes(raw) ? (raw as RangeDays) : DEFAULT_RANGE;
  const select = (next: RangeDays) =>
    setParams(
      (current) => {
        const updated = new URLSearchParams(current);
        if (next === DEFAULT_RANGE) updated.delete(RANGE_PARAM);
        else updated.set(RANGE_PARAM, String(next));
        return updated;
      },
      { replace: true },
    );
  return [days, select];
}

function RangePicker({ value, onChange }: { value: RangeDays; onChange: (days: RangeDays) => void }) {
  const labelId = useId();
  return (
    <div className="field">
      <span className="field__label" id={labelId}>
        Chart range
      </span>
      <div className="segmented" role="group" aria-labelledby={labelId}>
        {RANGES.map((days) => (
          <button key={days} type="button" className="chip" aria-pressed={value === days} onClick={() => onChange(days)}>
            {RANGE_LABEL[days]}
          </button>
        ))}
      </div>
    </div>
  );
}

function Dashboard({ accounts }: { accounts: Account[] }) {
  const [account, setAccount] = useAccountScope(accounts);
  const [days, setDays] = useRange();
  const scopeName = account === undefined ? `all ${accounts.length} accounts` : (accounts.find((item) => item.id === account)?.name ?? account);
  return (
    <>
      <PageHeader
        title="Dashboard"
        subtitle={SUBTITLE}
        actions={
          <div className="dashboard-controls">
            <AccountSwitcher accounts={accounts} value={account} onChange={setAccount} />
            <RangePicker value={days} onChange={setDays} />
          </div>
        }
      />
      <p className="sr-only" role="status">
        Showing {scopeName}
      </p>
      <div className="dashboard">
        <KpiTiles account={account} />
        <div className="dashboard__grid">
          <SavingsCard account={account} days={days} />
          <StabilityCard account={account} />
          <ResourceGapCard account={account} days={days} />
          <FleetCard account={account} />
          <HeatmapCard account={account} />
          <Inventory accounts={account === undefined ? accounts : accounts.filter((item) => item.id === account)} />
        </div>
      </div>
    </>
  );
}

/**
 * Card body for one dashboard query: a skeleton until the first answer, the error with a
 * retry if there is nothing to show, otherwise the content. A failed background refresh keeps
 * the last good numbers on screen.
 */
function QueryBody<T>({
  query,
  what,
  skeleton,
  children,
}: {
  query: UseQueryResult<T>;
  what: string;
  skeleton: ReactNode;
  children: (data: T) => ReactNode;
}) {
  if (query.data !== undefined) {
    return (
      <div className="query-body" aria-busy={query.isPlaceholderData}>
        {children(query.data)}
      </div>
    );
  }
  if (query.isError) return <ErrorState error={query.error} title={`Could not load ${what}`} onRetry={() => void query.refetch()} />;
  return (
    <div role="status" aria-label={`Loading ${what}`}>
      {skeleton}
    </div>
  );
}

function ChartSkeleton({ height }: { height: number }) {
  return (
    <div className="stack">
      <Skeleton width="40%" height={20} />
      <Skeleton height={height} />
    </div>
  );
}

/* ----------------------------------------------------------------------------------------- */
/* KPI tiles                                                                                  */

function KpiTiles({ account }: { account: Scope }) {
  const kpis = useKpis(account);
  if (kpis.data === undefined) {
    if (kpis.isError) {
      return (
        <Card>
          <ErrorState error={kpis.error} title="Could not load the headline numbers" onRetry={() => void kpis.refetch()} />
        </Card>
      );
    }
    return (
      <div className="stats" role="status" aria-label="Loading the headline numbers">
        {Array.from({ length: 4 }, (_, index) => (
          <div key={index} className="stat">
            <Skeleton width="50%" height={12} />
            <Skeleton width="70%" height={30} />
            <Skeleton width="85%" height={12} />
          </div>
        ))}
      </div>
    );
  }
  return <Kpis kpis={kpis.data} />;
}

function Kpis({ kpis }: { kpis: DashboardKpis }) {
  const savingsShare = kpis.monthly_spend > 0 ? kpis.potential_savings / kpis.monthly_spend : 0;
  return (
    <section aria-label="Headline numbers">
      <dl className="stats kpis">
        <div className="stat">
          <dt className="stat__label">Monthly spend</dt>
          <dd className="stat__value">{formatUsd(kpis.monthly_spend)}</dd>
          <dd className="stat__note">
            Compute {formatUsd(kpis.monthly_compute)} · storage {formatUsd(kpis.monthly_storage)}
          </dd>
        </div>
        <div className="stat">
          <dt className="stat__label">Potential savings</dt>
          <dd className="stat__value stat__value--success">{formatUsd(kpis.potential_savings)}</dd>
          <dd className="stat__note" title="Spot + bin-packing + idle storage, per month">
            {formatPercent(savingsShare)} of spend · Spot {formatUsd(kpis.potential_spot_savings)} · packing {formatUsd(kpis.potential_packing_savings)} ·
            idle storage {formatUsd(kpis.idle_storage)}
          </dd>
        </div>
        <div className="stat">
          <dt className="stat__label">Spot share</dt>
          <dd className="stat__value">{formatPercent(kpis.spot_share)}</dd>
          <dd>
            <Meter label="Spot share of cluster nodes" value={kpis.spot_share} tone="success" />
          </dd>
          <dd className="stat__note">
            of {kpis.nodes.toLocaleString()} cluster node{kpis.nodes === 1 ? '' : 's'} in {kpis.clusters.toLocaleString()} cluster
            {kpis.clusters === 1 ? '' : 's'}
          </dd>
        </div>
        <div className="stat">
          <dt className="stat__label">Efficiency grade</dt>
          <dd className="stat__value row">
            <GradeBadge grade={kpis.efficiency_grade} />
            {kpis.efficiency_score != null && <span className="stat__note">score {formatPercent(kpis.efficiency_score)}</span>}
          </dd>
          <dd className="stat__note">{kpis.efficiency_grade == null ? 'No pod data reported yet' : 'Node-weighted across clusters'}</dd>
        </div>
      </dl>
    </section>
  );
}

/* ----------------------------------------------------------------------------------------- */
/* Savings over time                                                                         */

function SavingsCard({ account, days }: { account: Scope; days: RangeDays }) {
  const series = useSavingsSeries(account, days);
  return (
    <Card title="Savings over time" className="dashboard__wide chart-card">
      <QueryBody query={series} what="savings over time" skeleton={<ChartSkeleton height={240} />}>
        {(data) => <SavingsBody series={data} days={days} />}
      </QueryBody>
    </Card>
  );
}

function SavingsBody({ series, days }: { series: SavingsSeries; days: RangeDays }) {
  const data = useMemo(() => savingsData(series.points), [series]);
  const latest = data.at(-1);
  if (latest === undefined) {
    return <p className="muted card-note">No cost history in this window yet. Points are recorded with every discovery of a cluster.</p>;
  }
  const average = mean(data.map((datum) => datum.percent));
  const summary = `Over the last ${RANGE_LABEL[days]}, the fleet cost on average ${average.toFixed(1)}% less than at On-Demand prices. Latest: ${formatUsdCents(latest.actual)}/h actual vs ${formatUsdCents(latest.baseline)}/h On-Demand (${latest.percent.toFixed(1)}% saved).`;
  return (
    <div className="stack">
      <dl className="inline-stats">
        <div>
          <dt>Saving now</dt>
          <dd className="inline-stats__value inline-stats__value--success">{latest.percent.toFixed(1)}%</dd>
        </div>
        <div>
          <dt>Average, {RANGE_LABEL[days]}</dt>
          <dd className="inline-stats__value">{average.toFixed(1)}%</dd>
        </div>
        <div>
          <dt>Actual vs On-Demand</dt>
          <dd className="inline-stats__value">
            {formatUsdCents(latest.actual)} <span className="muted">/ {formatUsdCents(latest.baseline)} per hour</span>
          </dd>
        </div>
      </dl>
      <ChartFigure label={`Savings over time chart. ${summary}`} summary={summary} height={240}>
        <SavingsChart data={data} days={days} />
      </ChartFigure>
    </div>
  );
}

/* ----------------------------------------------------------------------------------------- */
/* Stability                                                                                  */

function StabilityCard({ account }: { account: Scope }) {
  const stability = useStability(account);
  return (
    <Card title="Stability" className="chart-card">
      <QueryBody query={stability} what="the stability index" skeleton={<ChartSkeleton height={140} />}>
        {(data) => <StabilityBody stability={data} />}
      </QueryBody>
    </Card>
  );
}

function StabilityBody({ stability }: { stability: Stability }) {
  const low = stability.index < STABILITY_THRESHOLD;
  return (
    <figure className="stability">
      <StabilityGauge value={stability.index} label="Stability index" />
      <figcaption className={low ? 'stability__verdict stability__verdict--low' : 'stability__verdict'}>
        {low
          ? `Below ${STABILITY_THRESHOLD}: savings may be costing stability. Check the factors below.`
          : 'Savings are not degrading stability.'}
      </figcaption>
      <ul className="stability__components" aria-label="Stability factors">
        {stability.components.map((component) => {
          const name = stabilityComponentName(component.name);
          return (
            <li key={component.name}>
              <div className="row row--between">
                <span>{name}</span>
                <strong className="nowrap">{Math.round(component.score)}</strong>
              </div>
              <Meter label={name} value={component.score / 100} tone={stabilityTone(component.score)} />
              <span className="muted stability__detail">{component.detail}</span>
            </li>
          );
        })}
      </ul>
    </figure>
  );
}

/* ----------------------------------------------------------------------------------------- */
/* Resource gap                                                                               */

function ResourceGapCard({ account, days }: { account: Scope; days: RangeDays }) {
  const gap = useResourceGap(account, days);
  const [resource, setResource] = useState<Resource>('cpu');
  return (
    <Card
      title="Resource gap"
      className="dashboard__wide chart-card"
      actions={
        <div className="segmented" role="group" aria-label="Resource">
          {(['cpu', 'memory'] as const).map((option) => (
            <button key={option} type="button" className="chip" aria-pressed={resource === option} onClick={() => setResource(option)}>
              {option === 'cpu' ? 'CPU' : 'Memory'}
            </button>
          ))}
        </div>
      }
    >
      <QueryBody query={gap} what="the resource gap" skeleton={<ChartSkeleton height={240} />}>
        {(data) => <ResourceGapBody gap={data} days={days} resource={resource} />}
      </QueryBody>
    </Card>
  );
}

function ResourceGapBody({ gap, days, resource }: { gap: ResourceGap; days: RangeDays; resource: Resource }) {
  const data = useMemo(() => gapData(gap.points, resource), [gap, resource]);
  const latest = data.at(-1);
  const format = (value: number) => formatResource(value, resource);
  const waste = (
    <div>
      <dt>Bin-packing waste</dt>
      <dd className="inline-stats__value inline-stats__value--danger">
        {formatUsd(gap.bin_packing_waste_monthly)}
        <span className="muted">/mo projected</span>
      </dd>
    </div>
  );
  if (latest === undefined) {
    return (
      <div className="stack">
        <dl className="inline-stats">{waste}</dl>
        <p className="muted card-note">No capacity history in this window yet. Points are recorded with every discovery of a cluster.</p>
      </div>
    );
  }
  const requestedShare = latest.capacity > 0 ? latest.requested / latest.capacity : 0;
  const what = resource === 'cpu' ? 'CPU' : 'Memory';
  const summary = `${what} now: ${format(latest.capacity)} capacity, ${format(latest.requested)} requested (${formatPercent(requestedShare)}), ${format(latest.used)} used. The gap between capacity and requests is paid-for empty space: ${formatUsd(gap.bin_packing_waste_monthly)} per month beyond a 15% headroom.`;
  return (
    <div className="stack">
      <dl className="inline-stats">
        {waste}
        <div>
          <dt>Requested / capacity</dt>
          <dd className="inline-stats__value">
            {formatPercent(requestedShare)}{' '}
            <span className="muted">
              {format(latest.requested)} of {format(latest.capacity)}
            </span>
          </dd>
        </div>
      </dl>
      <ChartFigure label={`Resource gap chart, ${what}. ${summary}`} summary={summary} height={240}>
        <ResourceGapChart data={data} days={days} resource={resource} />
      </ChartFigure>
    </div>
  );
}

/* ----------------------------------------------------------------------------------------- */
/* Fleet composition                                                                          */

function FleetCard({ account }: { account: Scope }) {
  const fleet = useFleet(account);
  const kpis = useKpis(account);
  return (
    <Card title="Fleet composition" className="chart-card">
      <QueryBody query={fleet} what="the fleet composition" skeleton={<ChartSkeleton height={200} />}>
        {(data) => <FleetBody fleet={data} spotSavings={kpis.data?.potential_spot_savings} />}
      </QueryBody>
    </Card>
  );
}

function FleetBody({ fleet, spotSavings }: { fleet: FleetComposition; spotSavings: number | undefined }) {
  const groups = useMemo(() => groupFleet(fleet.slices), [fleet]);
  const total = groups.reduce((sum, group) => sum + group.instances, 0);
  if (total === 0) return <p className="muted card-note">No running instances in this scope.</p>;
  const families = groups.reduce((sum, group) => sum + group.families.length, 0);
  const summary = `${total.toLocaleString()} running instance${total === 1 ? '' : 's'} in ${families} famil${families === 1 ? 'y' : 'ies'}: ${groups
    .map((group) => `${group.instances.toLocaleString()} ${lifecycleName(group.lifecycle)} (${formatPercent(group.instances / total)}, ${formatUsd(group.monthlyCost)}/mo)`)
    .join(', ')}.`;
  return (
    <div className="stack">
      <ChartFigure label={`Fleet composition chart: lifecycle inside, instance family outside. ${summary}`} summary={summary} height={200}>
        <FleetChart groups={groups} />
      </ChartFigure>
      <ul className="fleet-legend" aria-label="Instances by lifecycle and family">
        {groups.map((group) => (
          <li key={group.lifecycle}>
            <div className="fleet-legend__group">
              <span className="swatch" style={{ background: lifecycleColor(group.lifecycle) }} />
              <strong>{lifecycleName(group.lifecycle)}</strong>
              <span className="muted">
                {group.instances.toLocaleString()} · {formatUsd(group.monthlyCost)}/mo
              </span>
            </div>
            <ul className="fleet-legend__families">
              {group.families.map((slice, index) => (
                <li key={slice.family} title={`${formatUsd(slice.monthly_cost)}/mo`}>
                  <span className="swatch" style={{ background: familyColor(group.lifecycle, index) }} />
                  {slice.family} <span className="muted">×{slice.instances}</span>
                </li>
              ))}
            </ul>
          </li>
        ))}
      </ul>
      {spotSavings !== undefined && spotSavings > 0 && (
        <p className="callout callout--success fleet-callout">
          <span>
            <strong>{formatUsd(spotSavings)}/mo</strong> potential savings by moving On-Demand cluster nodes to Spot.
          </span>
        </p>
      )}
    </div>
  );
}

/* ----------------------------------------------------------------------------------------- */
/* Activity heatmap                                                                           */

function HeatmapCard({ account }: { account: Scope }) {
  const heatmap = useHeatmap(account);
  return (
    <Card title="Activity heatmap" className="dashboard__full chart-card" actions={<span className="muted">Last 4 weeks · hours in UTC</span>}>
      <QueryBody query={heatmap} what="the activity heatmap" skeleton={<ChartSkeleton height={180} />}>
        {(data) => <HeatmapBody heatmap={data} />}
      </QueryBody>
    </Card>
  );
}

function HeatmapBody({ heatmap }: { heatmap: Heatmap }) {
  if (heatmap.cells.length === 0) {
    return <p className="muted card-note">No utilization history yet. The grid fills in as hourly usage is recorded.</p>;
  }
  return (
    <div className="heatmap-card">
      <ActivityHeatmap cells={heatmap.cells} label={`Activity by hour of the week. ${summarizeActivity(heatmap.cells)}`} />
      <aside className="hibernation" aria-label="Hibernation opportunity">
        <span className="stat__label">Hibernation opportunity</span>
        <span className="hibernation__value">
          {formatUsd(heatmap.hibernation_savings_monthly)}
          <span className="muted">/mo</span>
        </span>
        <span className="stat__note">
          Potential savings from sleeping through the {heatmap.idle_hours_per_week.toLocaleString()} idle hour
          {heatmap.idle_hours_per_week === 1 ? '' : 's'} per week (blue blocks, under 15% CPU).
        </span>
      </aside>
    </div>
  );
}

/* ----------------------------------------------------------------------------------------- */
/* Discovered inventory                                                                       */

const TILES: { key: keyof ScanCounts; label: string }[] = [
  { key: 'instances', label: 'EC2 instances' },
  { key: 'clusters', label: 'EKS clusters' },
  { key: 'volumes', label: 'EBS volumes' },
  { key: 'snapshots', label: 'EBS snapshots' },
];

/** Totals of the latest discovery scan across the selected accounts. */
function Inventory({ accounts }: { accounts: Account[] }) {
  const scans = useScanStatuses(accounts.map((account) => account.id));
  const total = (key: keyof ScanCounts) => scans.reduce((sum, scan) => sum + (scan.data?.counts[key] ?? 0), 0);
  const scanning = accounts.filter((account) => account.status === 'scanning').length;
  const failed = scans.find((scan) => scan.isError);
  const plural = accounts.length === 1 ? '' : 's';
  return (
    <Card title="Discovered inventory" className="dashboard__full">
      <div className="stack">
        <p className="muted">
          Across {accounts.length} connected account{plural}
          {scanning > 0 && ` · discovery running in ${scanning}`}
        </p>
        {failed?.isError ? (
          <ErrorState error={failed.error} onRetry={() => void failed.refetch()} />
        ) : (
          <dl className="stats">
            {TILES.map(({ key, label }) => (
              <div key={key} className="stat">
                <dt className="stat__label">{label}</dt>
                <dd className="stat__value">{total(key).toLocaleString()}</dd>
              </div>
            ))}
          </dl>
        )}
      </div>
    </Card>
  );
}
