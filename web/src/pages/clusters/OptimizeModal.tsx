import { useState } from 'react';
import { errorMessage } from '../../api/errors';
import type { ClusterSummary, Job } from '../../api/types';
import { Button, CheckboxField, Modal } from '../../components';
import { useOptimizeCluster } from './jobs';
import { useClusterPolicy } from './policy';

interface OptimizeModalProps {
  cluster: ClusterSummary;
  open: boolean;
  onClose: () => void;
  /** Called with the queued job. */
  onStarted: (job: Job) => void;
}

/** Confirms "Optimize Now" (optionally as a dry run) and queues the job. */
export function OptimizeModal({ cluster, open, onClose, onStarted }: OptimizeModalProps) {
  const [dryRun, setDryRun] = useState(false);
  const optimize = useOptimizeCluster(cluster.id);
  // Usually already loaded by the policy card; only used for the notes below.
  const policy = useClusterPolicy(cluster.id);
  const forcedDryRun = policy.data?.dry_run === true;
  const maintenance = policy.data?.maintenance_mode === true;

  const close = () => {
    optimize.reset();
    setDryRun(false);
    onClose();
  };

  const start = () =>
    optimize.mutate(dryRun || forcedDryRun, {
      onSuccess: (job) => {
        setDryRun(false);
        optimize.reset();
        onStarted(job);
      },
    });

  return (
    <Modal
      open={open}
      onClose={close}
      title={`Optimize ${cluster.name}`}
      description="Plans consolidation, On-Demand → spot moves and node replacements from the cluster's policy, then runs the plan in the background."
      footer={
        <>
          <Button variant="ghost" onClick={close}>
            Cancel
          </Button>
          <Button variant="primary" onClick={start} loading={optimize.isPending}>
            {dryRun || forcedDryRun ? 'Start dry run' : 'Start optimization'}
          </Button>
        </>
      }
    >
      <div className="stack">
        {optimize.isError && (
          <div className="form-alert" role="alert">
            {errorMessage(optimize.error)}
          </div>
        )}
        <CheckboxField
          label="Dry run (plan only, change nothing)"
          hint="Every action is validated and reported as “would execute”; no instance is launched or terminated."
          checked={dryRun || forcedDryRun}
          disabled={forcedDryRun}
          onChange={(event) => setDryRun(event.target.checked)}
        />
        {forcedDryRun && (
          <div className="callout callout--info">This cluster&apos;s optimization policy is set to dry run, so the job will only plan.</div>
        )}
        {maintenance && (
          <div className="callout callout--warning">Maintenance mode is on: the plan is computed but every action is blocked.</div>
        )}
        {!dryRun && !forcedDryRun && (
          <p className="muted">
            Without a dry run, replacement capacity is launched in {cluster.account_name} ({cluster.region}) and the nodes it replaces are
            terminated; their pods are rescheduled.
          </p>
        )}
      </div>
    </Modal>
  );
}
