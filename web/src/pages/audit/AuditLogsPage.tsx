import { useState } from 'react';
import { errorMessage } from '../../api/errors';
import type { AuditEntry } from '../../api/types';
import { Badge, Button, Card, EmptyState, ErrorState, SkeletonRows, Table, useToast, type Column } from '../../components';
import { SearchIcon } from '../../components/icons';
import { PageHeader } from '../../layout/PageHeader';
import { formatDateTime } from '../../lib/format';
import { useAuditLog, useExportAuditLog, useVerifyChain, type ExportFormat, type ExportResult } from './api';
import { AuditEntryDrawer } from './AuditEntryDrawer';
import { AuditFilters } from './AuditFilters';
import { ChainStatus } from './ChainStatus';
import { ExportResultModal } from './ExportResultModal';
import { DEFAULT_DRAFT, toQuery, type AuditQuery } from './filters';
import { actorLabel, outcomeTone } from './format';

const columns: Column<AuditEntry>[] = [
  {
    key: 'time',
    header: 'Time',
    width: '190px',
    render: (entry) => <time className="nowrap" dateTime={entry.timestamp}>{formatDateTime(entry.timestamp)}</time>,
  },
  { key: 'actor', header: 'Actor', render: (entry) => actorLabel(entry.actor) },
  { key: 'action', header: 'Action', render: (entry) => <span className="mono">{entry.action}</span> },
  {
    key: 'resource',
    header: 'Resource',
    render: (entry) => (
      <>
        {entry.resource_type}
        {entry.resource_id && <span className="muted mono"> {entry.resource_id.slice(0, 8)}</span>}
      </>
    ),
  },
  { key: 'outcome', header: 'Outcome', width: '110px', render: (entry) => <Badge tone={outcomeTone(entry.outcome)}>{entry.outcome}</Badge> },
  { key: 'ip', header: 'Source IP', width: '140px', render: (entry) => entry.source_ip ?? '—' },
];

export function AuditLogsPage() {
  const [query, setQuery] = useState<AuditQuery>(() => toQuery(DEFAULT_DRAFT, new Date()));
  const [selected, setSelected] = useState<AuditEntry | null>(null);
  const [exported, setExported] = useState<ExportResult | null>(null);
  const log = useAuditLog(query);
  const verify = useVerifyChain();
  const exportLog = useExportAuditLog();
  const toast = useToast();

  const runExport = (format: ExportFormat) =>
    exportLog.mutate(
      { format, from: query.from, to: query.to },
      { onSuccess: setExported, onError: (error) => toast.error(errorMessage(error)) },
    );

  const entries = log.data?.pages.flatMap((page) => page.items) ?? [];

  return (
    <>
      <PageHeader
        title="Audit Logs"
        subtitle="Every change made in your organization, in a tamper-evident hash chain."
        actions={
          <>
            <Button onClick={() => runExport('csv')} loading={exportLog.isPending && exportLog.variables.format === 'csv'}>
              Export CSV
            </Button>
            <Button onClick={() => runExport('json')} loading={exportLog.isPending && exportLog.variables.format === 'json'}>
              Export JSON
            </Button>
            <Button
              variant="primary"
              loading={verify.isPending}
              onClick={() => verify.mutate(undefined, { onError: (error) => toast.error(errorMessage(error)) })}
            >
              Verify chain
            </Button>
          </>
        }
      />
      <div className="stack">
        {verify.data && <ChainStatus result={verify.data} />}
        <Card>
          <AuditFilters onApply={(draft) => setQuery(toQuery(draft, new Date()))} />
        </Card>
        <Card flush>
          {log.isPending && <SkeletonRows label="Loading audit log" />}
          {log.isError && <ErrorState error={log.error} onRetry={() => void log.refetch()} />}
          {log.isSuccess &&
            (entries.length === 0 ? (
              <EmptyState icon={<SearchIcon size={22} />} title="No audit entries match" description="Widen the time range or clear filters." />
            ) : (
              <Table
                caption="Audit log entries"
                columns={columns}
                rows={entries}
                rowKey={(entry) => entry.id}
                onRowClick={setSelected}
                rowLabel={(entry) => `${entry.action} by ${actorLabel(entry.actor)}, open details`}
              />
            ))}
        </Card>
        {log.hasNextPage && (
          <div className="row row--center">
            <Button onClick={() => void log.fetchNextPage()} loading={log.isFetchingNextPage}>
              Load more
            </Button>
          </div>
        )}
      </div>
      <AuditEntryDrawer entry={selected} onClose={() => setSelected(null)} />
      <ExportResultModal result={exported} onClose={() => setExported(null)} />
    </>
  );
}
