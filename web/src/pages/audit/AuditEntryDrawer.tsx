import type { AuditEntry } from '../../api/types';
import { Badge, Modal } from '../../components';
import { formatDateTime } from '../../lib/format';
import { diffSnapshots, formatValue } from './diff';
import { actorLabel, outcomeTone } from './format';

export function AuditEntryDrawer({ entry, onClose }: { entry: AuditEntry | null; onClose: () => void }) {
  return (
    <Modal open={entry !== null} onClose={onClose} variant="drawer" title={entry?.action ?? ''} description={entry ? formatDateTime(entry.timestamp) : undefined}>
      {entry && <EntryDetails entry={entry} />}
    </Modal>
  );
}

function EntryDetails({ entry }: { entry: AuditEntry }) {
  const rows = diffSnapshots(entry.diff.before, entry.diff.after);
  return (
    <div className="stack">
      <dl className="details">
        <dt>Outcome</dt>
        <dd>
          <Badge tone={outcomeTone(entry.outcome)}>{entry.outcome}</Badge>
          {entry.status_code != null && <span className="muted"> HTTP {entry.status_code}</span>}
        </dd>
        <dt>Actor</dt>
        <dd>{actorLabel(entry.actor)}</dd>
        {entry.actor.kind === 'impersonation' && entry.actor.admin_id && (
          <>
            <dt>Support admin</dt>
            <dd className="mono">{entry.actor.admin_id}</dd>
          </>
        )}
        <dt>Resource</dt>
        <dd>
          {entry.resource_type}
          {entry.resource_id && <span className="mono"> {entry.resource_id}</span>}
        </dd>
        <dt>Source IP</dt>
        <dd>{entry.source_ip ?? '—'}</dd>
        <dt>User agent</dt>
        <dd>{entry.user_agent ?? '—'}</dd>
        <dt>Request ID</dt>
        <dd className="mono">{entry.request_id}</dd>
        <dt>Entry hash</dt>
        <dd className="mono">{entry.hash}</dd>
        <dt>Previous hash</dt>
        <dd className="mono">{entry.prev_hash}</dd>
      </dl>
      <h3>Changes</h3>
      {rows.length === 0 ? (
        <p className="muted">No state change was recorded for this action.</p>
      ) : (
        <div className="table-wrap card">
          <table className="table diff-table">
            <caption className="sr-only">Before and after values</caption>
            <thead>
              <tr>
                <th scope="col">Field</th>
                <th scope="col">Before</th>
                <th scope="col">After</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.path} className={`diff-row--${row.kind}`}>
                  <td className="mono">{row.path}</td>
                  <td>
                    <pre>{formatValue(row.before)}</pre>
                  </td>
                  <td>
                    <pre>{formatValue(row.after)}</pre>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
