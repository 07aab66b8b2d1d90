import type { Job } from '../api/types';

// Jobs seen running in this tab, and those whose end was already announced: the job panel
// and the live event stream both notice a job finishing, and only one toast must show.
const watched = new Set<string>();
const announced = new Set<string>();

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/** Announce this job's end with a toast when it finishes (called for jobs seen queued or running here). */
export function watchJob(id: string): void {
  if (!announced.has(id)) watched.add(id);
}

/** The completion toast for a watched job that has just finished, once; otherwise null. */
export function takeJobAnnouncement(job: Pick<Job, 'id' | 'status' | 'message' | 'dry_run'>): { tone: 'success' | 'error'; message: string } | null {
  if (!FINISHED.has(job.status) || !watched.has(job.id)) return null;
  watched.delete(job.id);
  announced.add(job.id);
  // The server prefixes dry-run messages with "dry run:"; the toast already says so.
  const text = job.message?.replace(/^dry run:\s*/i, '');
  const detail = text ? `: ${text}` : '.';
  if (job.status === 'failed') return { tone: 'error', message: `Optimization failed${detail}` };
  if (job.status === 'cancelled') return { tone: 'error', message: `Optimization cancelled${detail.replace(/^: cancelled:\s*/i, ': ')}` };
  return { tone: 'success', message: `${job.dry_run ? 'Dry run finished' : 'Optimization finished'}${detail}` };
}
