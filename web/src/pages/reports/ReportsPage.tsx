import { Link, useNavigate, useParams } from 'react-router-dom';
import { errorMessage } from '../../api/errors';
import { canManageOrg, useMe } from '../../auth/MeContext';
import { Badge, Button, Card, EmptyState, ErrorState, SkeletonRows, Table, useToast, type BadgeTone, type Column } from '../../components';
import { AuditIcon } from '../../components/icons';
import { PageHeader } from '../../layout/PageHeader';
import { formatDate, formatDateTime, formatPercent, formatUsd } from '../../lib/format';
import '../../styles/notify.css';
import { useReport, useReports, useRunReport, type ReportFigures, type ReportSummary } from './api';

export const REPORTS_PATH = '/reports';

/** "Mon 16 Nov – Sun 22 Nov 2026": the period's first and last day (the end is exclusive). */
export function periodLabel(start: string, end: string): string {
  const last = new Date(new Date(end).getTime() - 1000).toISOString();
  return `${formatDate(start)} – ${formatDate(last)}`;
}

const TREND_TONE: Record<string, BadgeTone> = { improving: 'success', declining: 'danger', steady: 'neutral', new: 'info' };
/** The trend as a reader says it ("new": no earlier week was graded). */
export function trendLabel(trend: string): string {
  return trend === 'new' ? 'first graded week' : trend;
}

function deliveryBadge(status: string | null | undefined) {
  if (!status) return <span className="muted">not sent</span>;
  const tone: BadgeTone = status === 'delivered' ? 'success' : status === 'failed' ? 'danger' : status === 'skipped' ? 'neutral' : 'info';
  return <Badge tone={tone}>{status === 'skipped' ? 'no recipients' : status}</Badge>;
}

export function ReportsPage() {
  const me = useMe();
  const canManage = canManageOrg(me);
  const reports = useReports();
  const run = useRunReport();
  const toast = useToast();
  const navigate = useNavigate();

  const runNow = () =>
    run.mutate(undefined, {
      onSuccess: (report) => {
        toast.success('Report made; it is being sent to the configured webhook and recipients.');
        navigate(`${REPORTS_PATH}/${report.id}`);
      },
      onError: (error) => toast.error(errorMessage(error)),
    });

  const columns: Column<ReportSummary>[] = [
    {
      key: 'period',
      header: 'Week',
      render: (r) => <Link to={`${REPORTS_PATH}/${r.id}`}>{periodLabel(r.period_start, r.period_end)}</Link>,
    },
    { key: 'kind', header: 'Made', width: '170px', render: (r) => (r.kind === 'scheduled' ? 'Weekly job' : `On demand, ${formatDate(r.created_at)}`) },
    { key: 'spend', header: 'Spend', width: '120px', render: (r) => formatUsd(r.spend) },
    { key: 'savings', header: 'Saved', width: '120px', render: (r) => formatUsd(r.savings) },
    {
      key: 'grade',
      header: 'Grade',
      width: '150px',
      render: (r) => (
        <span className="row">
          <strong>{r.efficiency_grade ?? '–'}</strong>
          {r.trend && <Badge tone={TREND_TONE[r.trend] ?? 'neutral'}>{trendLabel(r.trend)}</Badge>}
        </span>
      ),
    },
    { key: 'delivery', header: 'Delivery', width: '130px', render: (r) => deliveryBadge(r.delivery_status) },
  ];

  return (
    <>
      <PageHeader
        title="Weekly reports"
        subtitle="Every Monday, last week's spend, savings, efficiency grade and the top recommended action, sent to the recipients in Settings → Notifications."
        actions={
          canManage ? (
            <Button variant="primary" onClick={runNow} loading={run.isPending}>
              Make report now
            </Button>
          ) : undefined
        }
      />
      <Card title="Reports" flush>
        {reports.isPending && <SkeletonRows rows={3} label="Loading reports" />}
        {reports.isError && <ErrorState error={reports.error} onRetry={() => void reports.refetch()} />}
        {reports.isSuccess &&
          (reports.data.items.length === 0 ? (
            <EmptyState
              icon={<AuditIcon size={22} />}
              title="No reports yet"
              description={
                canManage
                  ? 'The first one arrives next Monday. "Make report now" covers the last 7 days.'
                  : 'The first one arrives next Monday.'
              }
            />
          ) : (
            <Table caption="Weekly reports" columns={columns} rows={reports.data.items} rowKey={(r) => r.id} />
          ))}
      </Card>
    </>
  );
}

function Kpi({ label, value, note }: { label: string; value: string; note?: string }) {
  return (
    <div className="report-kpi">
      <span className="report-kpi__label">{label}</span>
      <span className="report-kpi__value">{value}</span>
      {note && <span className="muted">{note}</span>}
    </div>
  );
}

export function ReportFiguresView({ f }: { f: ReportFigures }) {
  return (
    <div className="stack">
      <Card title="The week">
        <div className="report-kpis">
          <Kpi label="Spend" value={formatUsd(f.spend)} note={`${f.hours_observed} ${f.hours_observed === 1 ? 'hour' : 'hours'} observed`} />
          <Kpi label="On-demand equivalent" value={formatUsd(f.on_demand_baseline)} />
          <Kpi label="Saved" value={formatUsd(f.savings)} note={`${f.savings_percent.toFixed(1)}% below on-demand`} />
          <Kpi label="Hibernation saved" value={formatUsd(f.hibernation_savings)} note={`${f.hibernation_hours_asleep.toFixed(1)} cluster-hours asleep`} />
          <Kpi label="Monthly run rate" value={formatUsd(f.monthly_spend)} />
          <Kpi label="Potential savings" value={`${formatUsd(f.potential_savings)}/mo`} />
          <Kpi label="Clusters · nodes · on Spot" value={`${f.clusters} · ${f.nodes} · ${formatPercent(f.spot_share)}`} />
        </div>
      </Card>
      <Card title="Efficiency grade">
        <p>
          <strong className="grade-trend__grade">{f.efficiency_grade ?? '–'}</strong>{' '}
          <Badge tone={TREND_TONE[f.trend] ?? 'neutral'}>{trendLabel(f.trend)}</Badge>
        </p>
        <ol className="grade-trend" aria-label="Weekly grades">
          {f.grade_trend.map((g) => (
            <li key={g.week_start}>
              <span className="muted">{formatDate(g.week_start)}</span>
              <span className="grade-trend__grade">{g.grade ?? '–'}</span>
            </li>
          ))}
        </ol>
      </Card>
      <Card title="Top recommended action">
        {f.top_action ? (
          <div>
            <p>
              <strong>{f.top_action.title}</strong> — about {formatUsd(f.top_action.monthly_savings)} a month
            </p>
            <p className="muted">{f.top_action.detail}</p>
          </div>
        ) : (
          <p className="muted">Nothing stands out this week.</p>
        )}
      </Card>
    </div>
  );
}

export function ReportPage() {
  const { id } = useParams();
  const report = useReport(id);
  return (
    <>
      <PageHeader
        title={report.data ? `Week of ${periodLabel(report.data.period_start, report.data.period_end)}` : 'Weekly report'}
        subtitle={
          report.data ? (
            <>
              {report.data.kind === 'scheduled' ? 'Made by the weekly job' : 'Made on demand'} on {formatDateTime(report.data.created_at)} ·
              delivery {deliveryBadge(report.data.delivery_status)} · <Link to={REPORTS_PATH}>All reports</Link>
            </>
          ) : (
            <Link to={REPORTS_PATH}>All reports</Link>
          )
        }
      />
      {report.isPending && <SkeletonRows rows={5} label="Loading report" />}
      {report.isError && <ErrorState error={report.error} onRetry={() => void report.refetch()} />}
      {report.isSuccess && (
        <div className="stack">
          <ReportFiguresView f={report.data.figures} />
          <Card title="As e-mailed">
            <iframe className="report-frame" title="Report e-mail" sandbox="" srcDoc={report.data.html} />
          </Card>
        </div>
      )}
    </>
  );
}
