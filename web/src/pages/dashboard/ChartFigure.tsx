import { lazy, Suspense, type ReactNode } from 'react';
import { Skeleton } from '../../components';

// recharts is most of the app's JavaScript: the charts load as a separate chunk, after the
// page (and its KPIs and captions) are already on screen.
const charts = () => import('./charts');
export const SavingsChart = lazy(() => charts().then((module) => ({ default: module.SavingsChart })));
export const ResourceGapChart = lazy(() => charts().then((module) => ({ default: module.ResourceGapChart })));
export const FleetChart = lazy(() => charts().then((module) => ({ default: module.FleetChart })));

/**
 * A chart with its text alternative: the plot is one image for assistive technology, named by
 * the summary that is also shown underneath as the caption.
 */
export function ChartFigure({ label, summary, height, children }: { label: string; summary: ReactNode; height: number; children: ReactNode }) {
  return (
    <figure className="chart">
      <div className="chart__plot" role="img" aria-label={label} style={{ height }}>
        <Suspense fallback={<Skeleton height={height} />}>{children}</Suspense>
      </div>
      <figcaption className="chart__caption">{summary}</figcaption>
    </figure>
  );
}

