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
  }
}

export const OUTCOME_TONE: Record<AuditOutcome, BadgeTone> = {
  success: 'success',
  failed: 'danger',
  denied: 'warning',
};
