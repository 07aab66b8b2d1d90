import { useState } from 'react';
import { errorMessage } from '../../api/errors';
import { Badge, Button, EmptyState, ErrorState, Modal, SkeletonRows, useToast } from '../../components';
import { formatDateTime } from '../../lib/format';
import { diffPolicies, usePolicyVersions, useRevertClusterPolicy, type ClusterPolicy, type PolicyVersion } from './policy';

/** At most this many changes are listed per version; the rest are counted. */
const MAX_CHANGES = 6;

/** "Version 4 · saved by ana@acme.test · 1 May 2024, 10:00:00", or that the defaults apply. */
export function policyVersionLine(policy: ClusterPolicy): string {
  if (policy.version == null) return 'Defaults — not saved yet';
  return [`Version ${policy.version}`, policy.updated_by ? `saved by ${policy.updated_by}` : undefined, policy.updated_at ? formatDateTime(policy.updated_at) : undefined]
    .filter(Boolean)
    .join(' · ');
}

/** The cluster's stored policy versions, each with what it changed; owners and admins can restore an older one. */
export function PolicyHistoryDialog({
  clusterId,
  current,
  canEdit,
  open,
  onClose,
}: {
  clusterId: string;
  current: number | null | undefined;
  canEdit: boolean;
  open: boolean;
  onClose: () => void;
}) {
  const versions = usePolicyVersions(clusterId, open);
  const revert = useRevertClusterPolicy(clusterId);
  const toast = useToast();
  const [restoring, setRestoring] = useState<number | null>(null);

  const close = () => {
    revert.reset();
    onClose();
  };

  const restore = async (version: number) => {
    setRestoring(version);
    try {
      const restored = await revert.mutateAsync(version);
      toast.success(restored.version != null ? `Restored version ${version} as version ${restored.version}` : `Restored version ${version}`);
      close();
    } catch {
      // Shown in the dialog from `revert.error`.
    } finally {
      setRestoring(null);
    }
  };

  const items = versions.data ?? [];
  return (
    <Modal open={open} onClose={close} size="lg" title="Policy history" description="Every save is kept as a version, newest first.">
      <div className="stack">
        {revert.isError && (
          <div className="form-alert" role="alert">
            Could not restore the version: {errorMessage(revert.error)}
          </div>
        )}
        {versions.isPending && <SkeletonRows rows={4} label="Loading versions" />}
        {versions.isError && <ErrorState error={versions.error} title="Could not load the history" onRetry={() => void versions.refetch()} />}
        {versions.isSuccess && items.length === 0 && (
          <EmptyState title="No saved versions" description="The cluster uses the default policy until it is first saved." />
        )}
        {items.length > 0 && (
          <ol className="policy-history" aria-label="Policy versions">
            {items.map((item, index) => (
              <VersionRow
                key={item.version}
                item={item}
                previous={items[index + 1]}
                isCurrent={item.version === (current ?? items[0]?.version)}
                canRestore={canEdit}
                restoring={restoring === item.version}
                busy={revert.isPending}
                onRestore={() => void restore(item.version)}
              />
            ))}
          </ol>
        )}
      </div>
    </Modal>
  );
}

function VersionRow({
  item,
  previous,
  isCurrent,
  canRestore,
  restoring,
  busy,
  onRestore,
}: {
  item: PolicyVersion;
  previous: PolicyVersion | undefined;
  isCurrent: boolean;
  canRestore: boolean;
  restoring: boolean;
  busy: boolean;
  onRestore: () => void;
}) {
  const changes = previous ? diffPolicies(previous.policy, item.policy) : [];
  const shown = changes.slice(0, MAX_CHANGES);
  return (
    <li className="policy-history__item" aria-label={`Version ${item.version}`}>
      <div className="policy-history__head">
        <div className="policy-history__meta">
          <strong>Version {item.version}</strong>
          {isCurrent && <Badge tone="success">Current</Badge>}
          <span className="muted">
            <time dateTime={item.created_at}>{formatDateTime(item.created_at)}</time>
            {item.created_by ? ` · ${item.created_by}` : ''}
          </span>
        </div>
        {canRestore && !isCurrent && (
          <Button size="sm" loading={restoring} disabled={busy && !restoring} onClick={onRestore} aria-label={`Restore version ${item.version}`}>
            Restore
          </Button>
        )}
      </div>
      {item.note && <p className="policy-history__note">{item.note}</p>}
      {previous === undefined ? (
        <p className="muted policy-history__changes">First saved version.</p>
      ) : changes.length === 0 ? (
        <p className="muted policy-history__changes">No changes from version {previous.version}.</p>
      ) : (
        <ul className="policy-history__changes" aria-label={`Changes in version ${item.version}`}>
          {shown.map((line) => (
            <li key={line}>{line}</li>
          ))}
          {changes.length > shown.length && <li className="muted">and {changes.length - shown.length} more</li>}
        </ul>
      )}
    </li>
  );
}
