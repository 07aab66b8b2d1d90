import { useId, useState } from 'react';
import { useForm } from 'react-hook-form';
import { ApiError, errorMessage } from '../../../api/errors';
import { applyApiError } from '../../../api/forms';
import type { ActiveRiskModel, Job, RiskModel } from '../../../api/types';
import { isSuperAdmin, useMe } from '../../../auth/MeContext';
import { Badge, Button, Card, EmptyState, ErrorState, Field, Modal, Skeleton, SkeletonRows, Table, TextField, useToast, type Column } from '../../../components';
import { ModelIcon } from '../../../components/icons';
import { PageHeader } from '../../../layout/PageHeader';
import { formatDateTime } from '../../../lib/format';
import { isFinished, jobStatus } from '../../clusters/jobs';
import { useChecklist } from '../lab/api';
import { ChecklistPanel } from '../lab/ChecklistPanel';
import {
  canGraduate,
  formatBytes,
  modelStatus,
  modelUsage,
  parseRecomputeResult,
  parseValidation,
  useAdminHealth,
  useAdminJob,
  useGraduateModel,
  useRiskModels,
  useRollbackModel,
  useStartRecompute,
  useUploadModel,
} from './api';

export const RISK_MODEL_PATH = '/admin/risk-model';

/** Platform page for the spot interruption-risk model registry (super-admins only). */
export function RiskModelPage() {
  const me = useMe();
  if (!isSuperAdmin(me)) {
    return (
      <>
        <PageHeader title="AI model" />
        <Card>
          <EmptyState
            icon={<ModelIcon size={22} />}
            title="You are not allowed to view this page"
            description="Only platform super-admins can manage the interruption-risk model. Ask a platform operator if you need a change."
          />
        </Card>
      </>
    );
  }
  return <RiskModelAdmin />;
}

function RiskModelAdmin() {
  const models = useRiskModels();
  const graduate = useGraduateModel();
  const rollback = useRollbackModel();
  const recompute = useStartRecompute();
  const toast = useToast();
  const [graduating, setGraduating] = useState<RiskModel | null>(null);
  // The Lab's safety checklist of the model about to graduate (the server refuses with a
  // 409 naming the failing items otherwise; shown here before anyone clicks).
  const checklist = useChecklist(graduating?.id ?? null);
  const [rollingBack, setRollingBack] = useState(false);
  const [jobId, setJobId] = useState<string | null>(null);
  const job = useAdminJob(jobId);
  const recomputing = jobId !== null && !isFinished(job.data?.status);

  const active = models.data?.active;
  const activeEntry = models.data?.items.find((model) => model.id === active?.id);

  const confirmGraduate = () => {
    if (graduating === null) return;
    graduate.mutate(graduating.id, {
      onSuccess: (list) => {
        toast.success(`${list.active.name} is now the active model.`);
        setGraduating(null);
      },
      onError: (error) => {
        toast.error(errorMessage(error));
        setGraduating(null);
      },
    });
  };

  const confirmRollback = () =>
    rollback.mutate(undefined, {
      onSuccess: (list) => {
        toast.success(`Rolled back: ${list.active.name} is the active model again.`);
        setRollingBack(false);
      },
      onError: (error) => {
        toast.error(errorMessage(error));
        setRollingBack(false);
      },
    });

  const startRecompute = () =>
    recompute.mutate(undefined, {
      onSuccess: (job) => setJobId(job.id),
      onError: (error) => toast.error(errorMessage(error)),
    });

  const columns: Column<RiskModel>[] = [
    {
      key: 'name',
      header: 'Name',
      render: (model) => (
        <span className="row row--wrap model-cell">
          <span className="model-name">{model.name}</span>
          {model.id === active?.id && <Badge tone="success">Active</Badge>}
        </span>
      ),
    },
    {
      key: 'status',
      header: 'Status',
      width: '100px',
      render: (model) => {
        const status = modelStatus(model.status);
        return <Badge tone={status.tone}>{status.label}</Badge>;
      },
    },
    {
      key: 'sha256',
      header: 'SHA-256',
      width: '110px',
      render: (model) => (
        <span className="mono" title={model.sha256}>
          {model.sha256.slice(0, 12)}
          <span className="sr-only"> (full hash {model.sha256})</span>
        </span>
      ),
    },
    { key: 'size', header: 'Size', width: '80px', align: 'right', render: (model) => <span className="nowrap">{formatBytes(model.size_bytes)}</span> },
    {
      key: 'uploaded',
      header: 'Uploaded',
      width: '190px',
      render: (model) => (
        <span className="stack stack--tight">
          <span>{model.uploaded_by}</span>
          <span className="muted">{formatDateTime(model.uploaded_at)}</span>
        </span>
      ),
    },
    { key: 'validation', header: 'Validation', width: '190px', render: (model) => <ValidationSummary model={model} /> },
    {
      key: 'actions',
      header: <span className="sr-only">Actions</span>,
      width: '120px',
      render: (model) => {
        if (canGraduate(model.status)) {
          return (
            <Button key="graduate" size="sm" variant="primary" onClick={() => setGraduating(model)} aria-label={`Graduate ${model.name}`}>
              Graduate
            </Button>
          );
        }
        if (model.id === active?.id) {
          return (
            <Button key="rollback" size="sm" onClick={() => setRollingBack(true)} aria-label={`Roll back ${model.name}`}>
              Roll back
            </Button>
          );
        }
        return null;
      },
    },
  ];

  return (
    <>
      <PageHeader
        title="AI model"
        subtitle="The spot interruption-risk model every account and cluster actor decides with."
        actions={
          <Button onClick={startRecompute} loading={recompute.isPending || recomputing}>
            Recompute risk scores
          </Button>
        }
      />
      <div className="stack">
        {jobId !== null && <RecomputePanel job={job} onDismiss={() => setJobId(null)} />}
        <ActiveModelCard active={active} error={models.isError ? models.error : null} onRetry={() => void models.refetch()} />
        <UploadCard />
        <Card title="Registry" flush>
          {models.isPending && <SkeletonRows rows={3} label="Loading the model registry" />}
          {models.isError && <ErrorState error={models.error} title="Could not load the model registry" onRetry={() => void models.refetch()} />}
          {models.isSuccess &&
            (models.data.items.length === 0 ? (
              <EmptyState
                icon={<ModelIcon size={22} />}
                title="No uploaded models yet"
                description={
                  active?.degraded
                    ? 'No model could be loaded, so the static heuristic is deciding. Upload an ONNX model above to validate it against the contract.'
                    : 'The shipped model is serving. Upload an ONNX model above to validate it against the contract.'
                }
              />
            ) : (
              <Table caption="Risk model registry" columns={columns} rows={models.data.items} rowKey={(model) => model.id} />
            ))}
        </Card>
      </div>
      <Modal
        open={graduating !== null}
        onClose={() => setGraduating(null)}
        title="Graduate this model?"
        description={graduating ? `${graduating.name} becomes the active interruption-risk model.` : undefined}
        footer={
          <>
            <Button variant="ghost" onClick={() => setGraduating(null)}>
              Cancel
            </Button>
            <Button variant="primary" loading={graduate.isPending} disabled={!checklist.data?.passed} onClick={confirmGraduate}>
              Graduate model
            </Button>
          </>
        }
      >
        <div className="stack">
          <p>
            It is hot-swapped into <strong>every account and cluster actor</strong> of every organization, without a restart.
            Decisions already in flight finish on the current model; every decision after that uses the new one.
          </p>
          {active !== undefined && <p className="muted">You can roll back to the current model, {activeEntry?.name ?? active.name}, at any time.</p>}
          <h3 className="card-subtitle">Lab safety checklist</h3>
          {checklist.isPending && <SkeletonRows rows={3} />}
          {checklist.isError && <ErrorState error={checklist.error} onRetry={() => void checklist.refetch()} />}
          {checklist.data && <ChecklistPanel checklist={checklist.data} />}
          {checklist.data && !checklist.data.passed && (
            <p className="muted">Graduation opens once every check passes: run a live switch and an A/B test of this model in the Lab.</p>
          )}
        </div>
      </Modal>
      <Modal
        open={rollingBack}
        onClose={() => setRollingBack(false)}
        title="Roll back the active model?"
        description={active ? `${active.name} is retired and every actor swaps back.` : undefined}
        footer={
          <>
            <Button variant="ghost" onClick={() => setRollingBack(false)}>
              Cancel
            </Button>
            <Button variant="danger" loading={rollback.isPending} onClick={confirmRollback}>
              Roll back
            </Button>
          </>
        }
      >
        <p>The previously graduated model becomes active again, or the shipped model when there is none.</p>
      </Modal>
    </>
  );
}

function ValidationSummary({ model }: { model: RiskModel }) {
  const report = parseValidation(model.validation);
  if (report === null || report.checks.length === 0) return <span className="muted">Not validated</span>;
  const meta = [report.contract && `contract ${report.contract}`, report.runtime, report.durationMs !== undefined && `${report.durationMs} ms`]
    .filter(Boolean)
    .join(' · ');
  return (
    <details className="checks">
      <summary>
        {report.checks.length} checks passed
        {meta && <span className="checks__meta muted">{meta}</span>}
      </summary>
      <ul className="checks__list">
        {report.checks.map((check) => (
          <li key={check}>{check}</li>
        ))}
      </ul>
    </details>
  );
}

function ActiveModelCard({ active, error, onRetry }: { active: ActiveRiskModel | undefined; error: unknown; onRetry: () => void }) {
  const health = useAdminHealth();
  if (error !== null) {
    return (
      <Card title="Active model">
        <ErrorState error={error} title="Could not load the active model" onRetry={onRetry} />
      </Card>
    );
  }
  const usage = health.isSuccess ? modelUsage(health.data.actors) : [];
  return (
    <Card
      title="Active model"
      actions={active !== undefined ? <Badge tone={active.degraded ? 'danger' : 'success'}>{active.degraded ? 'Degraded' : 'Serving'}</Badge> : undefined}
    >
      {active === undefined ? (
        <div className="stack" role="status" aria-label="Loading the active model">
          <Skeleton width="40%" height={18} />
          <Skeleton width="60%" />
          <Skeleton width="30%" />
        </div>
      ) : (
        <div className="stack">
          {active.degraded && (
            <div className="callout callout--danger" role="alert">
              <strong className="callout__title">Degraded — static heuristic in use</strong>
              <span>{active.load_error ?? 'No model could be loaded.'}</span>
            </div>
          )}
          <dl className="details">
            <dt>Name</dt>
            <dd className="model-name">{active.name}</dd>
            <dt>ID</dt>
            <dd className="mono">{active.id}</dd>
            <dt>Runtime</dt>
            <dd>{active.runtime}</dd>
            <dt>Actors</dt>
            <dd>
              {health.isPending && <Skeleton width={220} />}
              {health.isError && <span className="muted">Actor status unavailable: {errorMessage(health.error)}</span>}
              {health.isSuccess &&
                (usage.length === 0 ? (
                  <span className="muted">No account actors are running.</span>
                ) : (
                  <ul className="model-usage" aria-label="Models in use by actors">
                    {usage.map((entry) => (
                      <li key={entry.model}>
                        <span className="mono">{entry.model}</span>
                        {entry.model === active.id ? <Badge tone="success">active</Badge> : <Badge tone="warning">not the active model</Badge>}
                        <span className="muted">
                          {plural(entry.accounts, 'account actor')}, {plural(entry.clusters, 'cluster actor')}
                        </span>
                      </li>
                    ))}
                  </ul>
                ))}
            </dd>
            {health.isSuccess && health.data.safe_mode && (
              <>
                <dt>Safe mode</dt>
                <dd>On: optimization jobs only plan.</dd>
              </>
            )}
          </dl>
        </div>
      )}
    </Card>
  );
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

interface UploadForm {
  file: FileList | null;
  name: string;
}

function UploadCard() {
  const upload = useUploadModel();
  const toast = useToast();
  const {
    register,
    handleSubmit,
    setError,
    reset,
    formState: { errors, isSubmitting },
  } = useForm<UploadForm>({ defaultValues: { file: null, name: '' } });

  const onSubmit = handleSubmit(async ({ file, name }) => {
    const chosen = file?.[0];
    if (chosen === undefined) return;
    try {
      const model = await upload.mutateAsync({ file: chosen, name });
      toast.success(`${model.name} passed validation. Graduate it to make it active.`);
      reset();
    } catch (error) {
      if (error instanceof ApiError && error.status === 413) {
        setError('file', { type: 'server', message: 'The file is too large for the server.' }, { shouldFocus: true });
      } else {
        applyApiError(error, ['file', 'name'], setError);
      }
    }
  });

  return (
    <Card title="Upload a model">
      <form className="stack" onSubmit={onSubmit} noValidate aria-label="Upload a model">
        {errors.root?.server && (
          <div className="form-alert" role="alert">
            {errors.root.server.message}
          </div>
        )}
        <div className="upload-grid">
          <Field
            label="ONNX file"
            hint="Contract v1: input features float32 [N, 22], output interruption_probability in [0, 1]. It is validated in a sandbox before it can be graduated."
            error={errors.file?.message}
          >
            {(control) => (
              <input
                type="file"
                accept=".onnx"
                className="input input--file"
                {...control}
                {...register('file', { validate: (files) => (files !== null && files.length > 0) || 'Choose an .onnx file to upload.' })}
              />
            )}
          </Field>
          <TextField label="Name (optional)" hint="Defaults to the file name." autoComplete="off" error={errors.name?.message} {...register('name')} />
        </div>
        <div className="row">
          <Button type="submit" variant="primary" loading={isSubmitting}>
            Upload and validate
          </Button>
        </div>
      </form>
    </Card>
  );
}

function RecomputePanel({ job, onDismiss }: { job: ReturnType<typeof useAdminJob>; onDismiss: () => void }) {
  const headingId = useId();
  const status = job.data ? jobStatus(job.data.status) : null;
  return (
    <section aria-labelledby={headingId} className="card">
      <header className="card__header">
        <div className="row">
          <h2 id={headingId}>Risk recompute</h2>
          {status && <Badge tone={status.tone}>{status.label}</Badge>}
        </div>
        <Button variant="ghost" size="sm" onClick={onDismiss} aria-label="Close recompute panel">
          Close
        </Button>
      </header>
      <div className="card__body">
        {job.isPending && <SkeletonRows rows={2} label="Loading the recompute job" />}
        {job.isError && <ErrorState error={job.error} title="Could not load the recompute job" onRetry={() => void job.refetch()} />}
        {job.isSuccess && <RecomputeBody job={job.data} />}
      </div>
    </section>
  );
}

function RecomputeBody({ job }: { job: Job }) {
  const result = parseRecomputeResult(job.result);
  const finished = isFinished(job.status);
  const message = job.message ?? (job.status === 'queued' ? 'Waiting for a worker…' : job.status === 'running' ? 'Rescoring pools and instances…' : '');
  return (
    <div className="stack">
      {!finished && (
        <div className="scan">
          <div className="row row--between">
            <span className="scan__phase" role="status">
              {message}
              <span className="sr-only">, {job.progress}% complete</span>
            </span>
            <span className="muted" aria-hidden="true">
              {job.progress}%
            </span>
          </div>
          <progress className="progress" max={100} value={job.progress} aria-label="Recompute progress" />
        </div>
      )}
      {job.status === 'failed' && (
        <div className="callout callout--danger" role="alert">
          <strong className="callout__title">The recompute failed</strong>
          <span>{job.message ?? 'No reason was reported.'}</span>
        </div>
      )}
      {job.status === 'succeeded' && (
        <p role="status">
          Risk scores recomputed{result?.model ? ` with ${result.model}` : ''}
          {job.finished_at != null && <span className="muted"> · finished {formatDateTime(job.finished_at)}</span>}
        </p>
      )}
      {finished && result !== null && (
        <>
          <dl className="stats">
            <Stat label="Accounts" value={result.accounts} />
            <Stat label="Pools" value={result.pools} />
            <Stat label="Instances" value={result.instances} />
            <Stat label="Failed" value={result.failed.length} />
          </dl>
          {result.degraded && (
            <div className="callout callout--danger">
              <strong className="callout__title">Scored with the static heuristic</strong>
              <span>The model was degraded while this job ran.</span>
            </div>
          )}
          {result.failed.length > 0 && (
            <div className="callout callout--danger">
              <strong className="callout__title">Not rescored</strong>
              <ul className="checks__list">
                {result.failed.map((entry) => (
                  <li key={entry}>{entry}</li>
                ))}
              </ul>
            </div>
          )}
        </>
      )}
    </div>
  );
}

function Stat({ label, value }: { label: string; value: number }) {
  return (
    <div className="stat">
      <dt className="stat__label">{label}</dt>
      <dd className="stat__value">{value.toLocaleString()}</dd>
    </div>
  );
}
