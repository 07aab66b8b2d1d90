import { useState } from 'react';
import { Badge, Button, Card, ErrorState } from '../../../components';
import { formatDateTime } from '../../../lib/format';
import { useStateChanges, type StateChange } from '../console/api';
import { LogLines } from './LiveLogPanel';

const HEALTHY = new Set(['ok', 'running', 'absent']);

/** Component state changes seen by the server's monitor, each with the log lines around it. */
export function StateChanges() {
  const changes = useStateChanges();
  return (
    <Card title="Component state changes">
      {changes.isError && <ErrorState error={changes.error} onRetry={() => void changes.refetch()} />}
      {changes.isSuccess && changes.data.items.length === 0 && (
        <p className="muted">No component changed state since this server started. Changes appear here with the log lines around them.</p>
      )}
      {changes.isSuccess && changes.data.items.length > 0 && (
        <ul className="state-changes" aria-label="State changes">
          {changes.data.items.map((c) => (
            <Change key={c.id} change={c} />
          ))}
        </ul>
      )}
    </Card>
  );
}

function Change({ change }: { change: StateChange }) {
  const [open, setOpen] = useState(false);
  return (
    <li className="state-change">
      <div className="row row--between">
        <div className="row">
          <strong className="mono">{change.component}</strong>
          <Badge tone="neutral">{change.from}</Badge>
          <span aria-hidden="true">→</span>
          <Badge tone={HEALTHY.has(change.to) ? 'success' : 'danger'}>{change.to}</Badge>
          <span className="muted">{formatDateTime(change.ts)}</span>
        </div>
        <Button onClick={() => setOpen((o) => !o)} aria-expanded={open}>
          {open ? 'Hide log lines' : `Show log lines (${change.before.length + change.after.length})`}
        </Button>
      </div>
      {change.detail && <p className="muted">{change.detail}</p>}
      {open && (
        <div className="log-scroll log-scroll--short">
          <LogLines lines={change.before} label={`Lines before the ${change.component} change`} />
          <p className="state-change__marker">— {change.component} became {change.to} —</p>
          <LogLines lines={change.after} label={`Lines after the ${change.component} change`} />
        </div>
      )}
    </li>
  );
}
