import { Link } from 'react-router-dom';
import { ApiError, errorMessage } from '../../api/errors';
import type { TemplateEstimate } from '../../api/types';
import { Skeleton } from '../../components';
import { formatHourly, formatPercent } from '../../lib/format';

export const CLOUD_INTEGRATIONS_PATH = '/settings/cloud-integrations';

interface EstimatePanelProps {
  /** No family chosen yet: nothing to price. */
  empty: boolean;
  data: TemplateEstimate | undefined;
  error: unknown;
  loading: boolean;
  /** A newer draft is being priced; the numbers shown are the previous draft's. */
  refreshing: boolean;
}

/** The live price of the draft template in a linked account's market. */
export function EstimatePanel({ empty, data, error, loading, refreshing }: EstimatePanelProps) {
  return (
    <aside className="card estimate" aria-label="Cost estimate" aria-busy={refreshing || loading || undefined}>
      <header className="card__header">
        <h2>Cost estimate</h2>
        {refreshing && <span className="spinner spinner--muted" aria-hidden="true" />}
      </header>
      <div className="card__body stack">{body({ empty, data, error, loading })}</div>
    </aside>
  );
}

function body({ empty, data, error, loading }: Omit<EstimatePanelProps, 'refreshing'>) {
  if (empty) return <p className="muted">Choose at least one instance family to see what its nodes cost now.</p>;
  if (error instanceof ApiError && error.status === 409) {
    return (
      <p className="muted" role="status">
        <Link to={CLOUD_INTEGRATIONS_PATH}>Link a cloud account to see prices</Link> of the pools this template admits.
      </p>
    );
  }
  if (error instanceof ApiError && error.status === 422) {
    return (
      <p className="muted" role="status">
        Fix the template to see prices: {errorMessage(error)}
      </p>
    );
  }
  if (error) return <p className="field__error">Could not price this template: {errorMessage(error)}</p>;
  if (loading || data === undefined) {
    return (
      <div className="stack" aria-label="Pricing the template">
        <Skeleton height={18} />
        <Skeleton height={18} />
        <Skeleton height={18} />
      </div>
    );
  }
  if (data.pools === 0 && data.instance_types === 0) {
    return (
      <p className="callout callout--warning" role="status">
        No instance type matches this template. Allow more families, architectures or sizes.
      </p>
    );
  }
  return (
    <>
      <dl className="estimate__figures" role="status">
        <div>
          <dt>Spot pools</dt>
          <dd>{data.pools.toLocaleString('en-US')}</dd>
        </div>
        <div>
          <dt>Instance types</dt>
          <dd>{data.instance_types.toLocaleString('en-US')}</dd>
        </div>
        <div>
          <dt>Average spot</dt>
          <dd>{data.avg_spot_hourly != null ? `${formatHourly(data.avg_spot_hourly)}/h` : '—'}</dd>
        </div>
        <div>
          <dt>Average On-Demand</dt>
          <dd>{data.avg_on_demand_hourly != null ? `${formatHourly(data.avg_on_demand_hourly)}/h` : '—'}</dd>
        </div>
        <div>
          <dt>Spot discount</dt>
          <dd className={data.spot_discount != null && data.spot_discount > 0 ? 'estimate__discount' : undefined}>
            {data.spot_discount != null ? formatPercent(data.spot_discount) : '—'}
          </dd>
        </div>
      </dl>
      <p className="field__hint">
        Mean current prices of the admitted pools in {data.region}. A spot pool is one instance type in one availability zone.
      </p>
    </>
  );
}
