import type { AuditActor, AuditOutcome } from '../../api/types';
import type { BadgeTone } from '../../components';

export function actorLabel(actor: AuditActor): string {
  const who = actor.email ?? actor.user_id ?? 'Unknown user';
  switch (actor.kind) {
    case 'user':
      return who;
    case 'system':
      return actor.component ? `System · ${actor.component}` : 'System';
    case 'impersonation':
      return `${who} (support access)`;
    case 'anonymous':
      return actor.email ? `${actor.email} (not signed in)` : 'Anonymous';
    default:
      return who;
  }
}

const OUTCOME_TONE: Record<AuditOutcome, BadgeTone> = {
  success: 'success',
  failed: 'danger',
  denied: 'warning',
};

function isOutcome(value: string): value is AuditOutcome {
  return Object.hasOwn(OUTCOME_TONE, value);
}

/** Badge tone for an entry's outcome (typed as a plain string on AuditEntry). */
export function outcomeTone(outcome: string): BadgeTone {
  return isOutcome(outcome) ? OUTCOME_TONE[outcome] : 'neutral';
}
