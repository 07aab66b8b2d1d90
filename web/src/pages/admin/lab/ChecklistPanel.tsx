import type { LabChecklist } from '../../../api/types';
import { Badge } from '../../../components';

/** The safety checklist of a model: every item with its figures, passing or not. */
export function ChecklistPanel({ checklist }: { checklist: LabChecklist }) {
  const failing = checklist.items.filter((i) => !i.passed).length;
  return (
    <div className="lab-checklist">
      <p>
        {checklist.passed ? (
          <Badge tone="success">All safety checks pass</Badge>
        ) : (
          <Badge tone="danger">
            {failing} of {checklist.items.length} checks fail
          </Badge>
        )}
      </p>
      <ul className="lab-checks" aria-label="Safety checklist">
        {checklist.items.map((i) => (
          <li key={i.key} className={i.passed ? 'lab-check lab-check--ok' : 'lab-check lab-check--fail'}>
            <span aria-hidden="true" className="lab-check__mark">
              {i.passed ? '✓' : '✗'}
            </span>
            <span className="lab-check__label">{i.label}</span>
            <span className="sr-only">{i.passed ? 'passed' : 'failed'}</span>
            <span className="lab-check__detail muted">{i.detail}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}
