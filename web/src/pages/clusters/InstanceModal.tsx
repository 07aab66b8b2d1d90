import { useId, useState } from 'react';
import type { AlternativePool, InstanceDetail, InstanceSummary } from '../../api/types';
import { Badge, Button, ErrorState, Modal, SkeletonRows, Table, type Column } from '../../components';
import { ForceOnDemandModal } from './ForceOnDemand';
import type { OverrideStarted } from './overrides';
import { formatDateTime, formatHourly, formatMemory, formatUsdCents } from '../../lib/format';
import { useInstance } from './api';
import { historyKind, historyText, lifecycleLabel, lifecycleTone } from './format';
import { RiskBadge } from './indicators';

interface InstanceModalProps {
  instance: InstanceSummary | null;
  onClose: () => void;
  /** Admins of a cluster node get "Force on-demand". */
  canManage?: boolean;
  onForced?: (started: OverrideStarted) => void;
}

/** Details of a node picked from a table: its history and the cheapest compatible spot pools. */
export function InstanceModal({ instance, onClose, canManage = false, onForced }: InstanceModalProps) {
  const detail = useInstance(instance?.id ?? null);
  const [forcing, setForcing] = useState(false);
  const forceable = canManage && instance !== null && instance.cluster_id != null && instance.state === 'running';
  if (forcing && instance !== null) {
    return (
      <ForceOnDemandModal
        target={{ scope: 'instance', id: instance.id, label: instance.instance_id }}
        open
        onClose={() => setForcing(false)}
        onStarted={(started) => {
          setForcing(false);
          onClose();
          onForced?.(started);
        }}
      />
    );
  }
  return (
    <Modal
      open={instance !== null}
      onClose={onClose}
      size="lg"
      title={instance?.instance_id ?? ''}
      description={instance ? `${instance.instance_type} · ${lifecycleLabel(instance.lifecycle)} · ${instance.az}` : undefined}
      footer={
        forceable ? (
          <Button variant="secondary" onClick={() => setForcing(true)}>
            Force on-demand
          </Button>
        ) : undefined
      }
    >
      {detail.isPending && <SkeletonRows rows={6} label="Loading instance" />}
      {detail.isError && <ErrorState error={detail.error} title="Could not load this instance" onRetry={() => void detail.refetch()} />}
      {detail.isSuccess && <InstanceBody detail={detail.data} />}
    </Modal>
  );
}

function InstanceBody({ detail }: { detail: InstanceDetail }) {
  const { instance, history, alternatives } = detail;
  const tags = Object.entries(typeof detail.tags === 'object' && detail.tags !== null ? (detail.tags as Record<string, unknown>) : {});
  const columns = alternativeColumns(instance.monthly_cost);
  const alternativesHeading = useId();
  const historyHeading = useId();
  return (
    <div className="stack">
      <dl className="details">
        <dt>Lifecycle</dt>
        <dd>
          <Badge tone={lifecycleTone(instance.lifecycle)}>{lifecycleLabel(instance.lifecycle)}</Badge>
        </dd>
        {instance.lifecycle === 'spot' && (
          <>
            <dt>Interruption risk</dt>
            <dd className="row row--wrap">
              {instance.risk_band != null ? (
                <>
                  <RiskBadge band={instance.risk_band} probability={instance.interruption_probability} model={instance.risk_model} />
                  {instance.risk_model != null && <span className="muted">model {instance.risk_model}</span>}
                </>
              ) : (
                <span className="muted">Not scored yet</span>
              )}
            </dd>
          </>
        )}
        <dt>State</dt>
        <dd>{instance.state}</dd>
        <dt>Pool</dt>
        <dd className="row row--wrap">
          <span className="mono">{instance.pool}</span>
          {instance.pool_flagged && <Badge tone="warning">⚠ Flagged: recent interruptions</Badge>}
        </dd>
        <dt>Node group</dt>
        <dd>{instance.node_group ?? '—'}</dd>
        <dt>Price</dt>
        <dd>
          {formatHourly(instance.hourly_price)}/h <span className="muted">(On-Demand {formatHourly(instance.on_demand_hourly)}/h)</span>
        </dd>
        <dt>Monthly cost</dt>
        <dd>{formatUsdCents(instance.monthly_cost)}</dd>
        <dt>Launched</dt>
        <dd>{instance.launched_at != null ? formatDateTime(instance.launched_at) : '—'}</dd>
        {tags.length > 0 && (
          <>
            <dt>Tags</dt>
            <dd className="row row--wrap">
              {tags.map(([key, value]) => (
                <Badge key={key}>
                  {key}={String(value)}
                </Badge>
              ))}
            </dd>
          </>
        )}
      </dl>

      <section className="stack stack--tight" aria-labelledby={alternativesHeading}>
        <h3 id={alternativesHeading}>Cheapest compatible spot pools</h3>
        {detail.alternatives_as_of == null ? (
          <p className="muted">Spot prices for this account have not been read yet: they arrive with its next discovery.</p>
        ) : alternatives.length === 0 ? (
          <p className="muted">No spot prices for compatible instance types in this account’s region.</p>
        ) : (
          <>
            <p className="muted">Prices as of {formatDateTime(detail.alternatives_as_of)} (the account’s last discovery).</p>
            <div className="card">
              <Table caption="Alternative spot pools" columns={columns} rows={alternatives} rowKey={(pool) => `${pool.instance_type}@${pool.az}`} />
            </div>
          </>
        )}
      </section>

      <section className="stack stack--tight" aria-labelledby={historyHeading}>
        <h3 id={historyHeading}>History</h3>
        {history.length === 0 ? (
          <p className="muted">No changes recorded yet.</p>
        ) : (
          <ol className="timeline" aria-label="Instance history">
            {history.map((entry, index) => {
              const kind = historyKind(entry.kind);
              return (
                <li key={`${entry.at}-${index}`} className="timeline__item">
                  <div className="row row--wrap">
                    <Badge tone={kind.tone}>{kind.label}</Badge>
                    <time className="muted" dateTime={entry.at}>
                      {formatDateTime(entry.at)}
                    </time>
                  </div>
                  <p>{historyText(entry)}</p>
                </li>
              );
            })}
          </ol>
        )}
      </section>
    </div>
  );
}

/** Columns of the alternatives table; the last compares each pool with the current monthly cost. */
function alternativeColumns(currentMonthly: number): Column<AlternativePool>[] {
  return [
    { key: 'type', header: 'Instance type', render: (pool) => <span className="mono">{pool.instance_type}</span> },
    { key: 'az', header: 'AZ', render: (pool) => pool.az },
    {
      key: 'size',
      header: 'vCPU / memory',
      render: (pool) => (
        <span className="nowrap">
          {pool.vcpu} / {formatMemory(pool.memory_mib)}
        </span>
      ),
    },
    { key: 'price', header: 'Spot / hour', align: 'right', render: (pool) => formatHourly(pool.spot_price) },
    {
      key: 'monthly',
      header: 'Monthly',
      align: 'right',
      render: (pool) => {
        const delta = pool.monthly_cost - currentMonthly;
        return (
          <div className="cell-stack">
            <span>{formatUsdCents(pool.monthly_cost)}</span>
            <span className={delta < 0 ? 'delta delta--down' : 'muted'}>
              {delta < 0 ? '−' : '+'}
              {formatUsdCents(Math.abs(delta))} vs now
            </span>
          </div>
        );
      },
    },
    {
      key: 'band',
      header: 'Interruption risk',
      render: (pool) => <RiskBadge band={pool.interruption_band} probability={pool.interruption_probability} />,
    },
  ];
}
