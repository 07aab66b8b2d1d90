import { useEffect, useMemo, useRef, useState } from 'react';
import { useForm } from 'react-hook-form';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import { clusterAgentStatus, type AgentStatus, type AgentToken, type RegisteredCluster } from '../../api/agent';
import { ApiError, errorMessage } from '../../api/errors';
import { applyApiError } from '../../api/forms';
import type { ClusterSummary } from '../../api/types';
import { canManageOrg, useMe } from '../../auth/MeContext';
import { Button, Card, EmptyState, ErrorState, SelectField, SkeletonRows, TextField } from '../../components';
import { PageHeader } from '../../layout/PageHeader';
import { useAccounts } from '../accounts/api';
import { CONNECT_ACCOUNT_PATH } from '../accounts/format';
import { AgentBadge } from './AgentBadge';
import { useAgent, useCreateAgentToken, useRegisterCluster, useRotateAgentToken } from './agent';
import { useClusters } from './api';
import { InstallCommands } from './InstallCommands';

type Step = 'cluster' | 'install' | 'verify';
const STAGES: { step: Step; label: string }[] = [
  { step: 'cluster', label: 'Cluster' },
  { step: 'install', label: 'Install agent' },
  { step: 'verify', label: 'Verify' },
];

/** Clusters that need an agent first, connected ones last, each group by name. */
const STATUS_ORDER: Record<AgentStatus, number> = { not_installed: 0, revoked: 1, disconnected: 2, waiting: 3, connected: 4 };

export function sortForInstall(clusters: ClusterSummary[]): ClusterSummary[] {
  const rank = (cluster: ClusterSummary) => STATUS_ORDER[clusterAgentStatus(cluster) ?? 'not_installed'];
  return [...clusters].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

/**
 * "Add cluster": pick a discovered EKS cluster (or register one discovery did not find), install
 * the agent with Helm, kubectl or Terraform using a token shown once, then wait for its first
 * heartbeat. `?cluster=<id>` preselects a cluster (the "Install agent" links).
 */
export function AddClusterPage() {
  const me = useMe();
  const [params] = useSearchParams();
  const [step, setStep] = useState<Step>('cluster');
  const [cluster, setCluster] = useState<{ id: string; name: string } | null>(null);
  const [token, setToken] = useState<AgentToken | null>(null);
  const stepRef = useMoveFocusToHeading(step);

  if (!canManageOrg(me)) {
    return (
      <>
        <PageHeader title="Add cluster" />
        <Card>
          <EmptyState
            title="Only owners and admins can install the agent"
            description="Ask an owner or admin of your organization to add this cluster."
            action={
              <Link to="/clusters" className="btn btn--secondary">
                Back to clusters
              </Link>
            }
          />
        </Card>
      </>
    );
  }

  const current = STAGES.findIndex((stage) => stage.step === step);
  return (
    <>
      <Link to="/clusters" className="back-link">
        ← All clusters
      </Link>
      <div className="wizard">
        <PageHeader title="Add cluster" subtitle="Connect the in-cluster agent so Spot Optimizer sees nodes, pods and disruption budgets." />
        <ol className="wizard__stages" aria-label="Add cluster progress">
          {STAGES.map((stage, index) => (
            <li
              key={stage.step}
              className={index < current ? 'wizard__stage wizard__stage--done' : 'wizard__stage'}
              aria-current={index === current ? 'step' : undefined}
            >
              <span className="wizard__stage-number" aria-hidden="true">
                {index + 1}
              </span>
              {stage.label}
            </li>
          ))}
        </ol>
        <Card>
          <div ref={stepRef}>
            {step === 'cluster' && (
              <ClusterStep
                preselected={params.get('cluster')}
                onToken={(chosen, issued) => {
                  setCluster(chosen);
                  setToken(issued);
                  setStep('install');
                }}
              />
            )}
            {step === 'install' && token !== null && cluster !== null && (
              <div className="stack">
                <div>
                  <h2>Install the agent on {cluster.name}</h2>
                  <p className="muted">Choose how you deploy to this cluster and run the command. The agent starts and sends its first heartbeat.</p>
                </div>
                <InstallCommands token={token} />
                <div className="row row--end">
                  <Button variant="primary" onClick={() => setStep('verify')}>
                    I ran it: wait for the agent
                  </Button>
                </div>
              </div>
            )}
            {step === 'verify' && cluster !== null && (
              <VerifyStep
                cluster={cluster}
                onBack={() => setStep('install')}
                onRestart={() => {
                  setToken(null);
                  setStep('cluster');
                }}
              />
            )}
          </div>
        </Card>
      </div>
    </>
  );
}

/** After each step change, moves focus to the new step's heading so screen readers announce it. */
function useMoveFocusToHeading(step: Step) {
  const ref = useRef<HTMLDivElement>(null);
  const previous = useRef(step);
  useEffect(() => {
    if (previous.current === step) return;
    previous.current = step;
    const heading = ref.current?.querySelector<HTMLElement>('h1, h2');
    heading?.setAttribute('tabindex', '-1');
    heading?.focus();
  }, [step]);
  return ref;
}

type Source = 'discovered' | 'register';

/** Step 1: a discovered cluster or one registered by name; then a token for it. */
function ClusterStep({ preselected, onToken }: { preselected: string | null; onToken: (cluster: { id: string; name: string }, token: AgentToken) => void }) {
  const clusters = useClusters();
  const [source, setSource] = useState<Source>('discovered');
  const [selectedId, setSelectedId] = useState<string | null>(preselected);
  const [conflict, setConflict] = useState<{ id: string; name: string } | null>(null);
  const create = useCreateAgentToken();
  const rotate = useRotateAgentToken();
  const [error, setError] = useState<unknown>(null);
  const sorted = useMemo(() => sortForInstall(clusters.data?.items ?? []), [clusters.data]);
  const selected = sorted.find((cluster) => cluster.id === selectedId) ?? null;

  // Nothing discovered yet: registering by name is the only way.
  useEffect(() => {
    if (clusters.isSuccess && clusters.data.items.length === 0) setSource('register');
  }, [clusters.isSuccess, clusters.data]);

  const issue = async (chosen: { id: string; name: string }) => {
    setError(null);
    setConflict(null);
    try {
      onToken(chosen, await create.mutateAsync(chosen.id));
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 409) setConflict(chosen);
      else setError(failure);
    }
  };

  const rotateToken = async () => {
    if (conflict === null) return;
    setError(null);
    try {
      onToken(conflict, await rotate.mutateAsync(conflict.id));
    } catch (failure) {
      setError(failure);
    }
  };

  return (
    <div className="stack">
      <div>
        <h2>Which cluster?</h2>
        <p className="muted">Pick an EKS cluster discovery found in a connected account, or register one it did not find.</p>
      </div>
      <div className="row toggles" role="group" aria-label="Cluster source">
        <button type="button" className="chip" aria-pressed={source === 'discovered'} onClick={() => setSource('discovered')}>
          Discovered clusters
        </button>
        <button type="button" className="chip" aria-pressed={source === 'register'} onClick={() => setSource('register')}>
          Register by name
        </button>
      </div>
      {error !== null && (
        <div className="form-alert" role="alert">
          {errorMessage(error)}
        </div>
      )}
      {conflict !== null && (
        <div className="callout callout--warning" role="alert">
          <p className="callout__title">{conflict.name} already has an active agent token</p>
          <p>
            Each token is shown only once. Rotate it to get a new install command: the current token stops working at once, so an agent
            already running with it disconnects until it is reinstalled with the new one.
          </p>
          <div className="row">
            <Button variant="primary" loading={rotate.isPending} onClick={() => void rotateToken()}>
              Rotate token
            </Button>
            <Button variant="ghost" onClick={() => setConflict(null)}>
              Cancel
            </Button>
          </div>
        </div>
      )}
      {source === 'discovered' && (
        <>
          {clusters.isPending && <SkeletonRows rows={3} label="Loading clusters" />}
          {clusters.isError && <ErrorState error={clusters.error} title="Could not load clusters" onRetry={() => void clusters.refetch()} />}
          {clusters.isSuccess && (
            <fieldset className="cluster-picker">
              <legend className="sr-only">Discovered clusters</legend>
              {sorted.map((cluster) => (
                <label key={cluster.id} className="cluster-option" data-selected={cluster.id === selectedId || undefined}>
                  <input
                    type="radio"
                    name="cluster"
                    value={cluster.id}
                    checked={cluster.id === selectedId}
                    onChange={() => {
                      setSelectedId(cluster.id);
                      setConflict(null);
                    }}
                  />
                  <span className="cluster-option__name">
                    <span className="cell-title">{cluster.name}</span>
                    <span className="muted">
                      {cluster.account_name} · {cluster.region} · {cluster.node_count.toLocaleString()} nodes
                    </span>
                  </span>
                  {clusterAgentStatus(cluster) !== null && (
                    <AgentBadge clusterId={cluster.id} clusterName={cluster.name} status={clusterAgentStatus(cluster) ?? 'not_installed'} />
                  )}
                </label>
              ))}
            </fieldset>
          )}
          <div className="row row--between">
            <Link to="/clusters" className="btn btn--ghost">
              Cancel
            </Link>
            <Button variant="primary" disabled={selected === null} loading={create.isPending} onClick={() => selected && void issue(selected)}>
              Connect
            </Button>
          </div>
        </>
      )}
      {source === 'register' && <RegisterForm onRegistered={(created) => void issue(created)} issuing={create.isPending} />}
    </div>
  );
}

interface RegisterValues {
  account_id: string;
  name: string;
  region: string;
}

const REGISTER_FIELDS = ['account_id', 'name', 'region'] as const;

/** A cluster discovery did not find: the account it runs in, its EKS name and region. */
function RegisterForm({ onRegistered, issuing }: { onRegistered: (cluster: RegisteredCluster) => void; issuing: boolean }) {
  const accounts = useAccounts();
  const register = useRegisterCluster();
  const {
    register: field,
    handleSubmit,
    setError,
    setValue,
    getValues,
    formState: { errors, isSubmitting },
  } = useForm<RegisterValues>({ defaultValues: { account_id: '', name: '', region: '' } });

  // Default to the first account and its home region.
  useEffect(() => {
    const first = accounts.data?.[0];
    if (first && getValues('account_id') === '') {
      setValue('account_id', first.id);
      if (getValues('region') === '') setValue('region', first.region ?? '');
    }
  }, [accounts.data, getValues, setValue]);

  const onSubmit = handleSubmit(async (values) => {
    try {
      const region = values.region.trim();
      onRegistered(await register.mutateAsync({ account_id: values.account_id, name: values.name.trim(), ...(region ? { region } : {}) }));
    } catch (error) {
      applyApiError(error, REGISTER_FIELDS, setError);
    }
  });

  if (accounts.isPending) return <SkeletonRows rows={3} label="Loading accounts" />;
  if (accounts.isError) return <ErrorState error={accounts.error} title="Could not load accounts" onRetry={() => void accounts.refetch()} />;
  if (accounts.data.length === 0) {
    return (
      <EmptyState
        title="Connect an AWS account first"
        description="A cluster belongs to a connected account: Spot Optimizer launches its replacement nodes there."
        action={
          <Link to={CONNECT_ACCOUNT_PATH} className="btn btn--primary">
            Connect AWS account
          </Link>
        }
      />
    );
  }

  return (
    <form className="stack" onSubmit={onSubmit} noValidate aria-label="Register a cluster">
      {errors.root?.server && (
        <div className="form-alert" role="alert">
          {errors.root.server.message}
        </div>
      )}
      <div className="form-grid">
        <SelectField
          label="Account"
          error={errors.account_id?.message}
          {...field('account_id', { required: 'Choose the account the cluster runs in.' })}
        >
          {accounts.data.map((account) => (
            <option key={account.id} value={account.id}>
              {account.name}
            </option>
          ))}
        </SelectField>
        <TextField
          label="Cluster name"
          autoComplete="off"
          placeholder="staging-eks"
          hint="The EKS cluster's name, as in aws eks list-clusters."
          error={errors.name?.message}
          {...field('name', {
            required: 'Enter the cluster name.',
            validate: (name) => name.trim().length <= 100 || 'At most 100 characters.',
          })}
        />
        <TextField label="Region" autoComplete="off" placeholder="us-east-1" hint="Optional: the account's region by default." error={errors.region?.message} {...field('region')} />
      </div>
      <div className="row row--between">
        <Link to="/clusters" className="btn btn--ghost">
          Cancel
        </Link>
        <Button type="submit" variant="primary" loading={isSubmitting || issuing}>
          Register and connect
        </Button>
      </div>
    </form>
  );
}

/** Step 3: a sonar while no heartbeat has arrived, green with the versions once one has. */
function VerifyStep({ cluster, onBack, onRestart }: { cluster: { id: string; name: string }; onBack: () => void; onRestart: () => void }) {
  const agent = useAgent(cluster.id, { waitForHeartbeat: true });
  const navigate = useNavigate();
  const connected = agent.data?.status === 'connected';
  const revoked = agent.data?.status === 'revoked';

  return (
    <div className="stack">
      <div>
        <h2>{connected ? 'Agent connected' : `Waiting for the agent on ${cluster.name}`}</h2>
        <p className="muted">
          {connected
            ? 'Spot Optimizer now sees this cluster through its agent.'
            : 'The agent sends a heartbeat every 30 seconds once its pod is running. This page updates as soon as the first one arrives.'}
        </p>
      </div>
      <div className={connected ? 'sonar sonar--connected' : revoked ? 'sonar sonar--failed' : 'sonar'} role="status" aria-live="polite" aria-label="Agent connection">
        <span className="sonar__ping" aria-hidden="true">
          <span className="sonar__ring" />
          <span className="sonar__ring" />
          <span className="sonar__core">{connected ? '✓' : ''}</span>
        </span>
        <span className="sonar__text">
          {connected && agent.data ? (
            <>
              <strong>Connection established</strong>
              <span>
                Agent {agent.data.agent_version ?? 'unknown version'} · Kubernetes {agent.data.kubernetes_version ?? 'unknown'}
              </span>
              <span className="muted">
                {agent.data.nodes.toLocaleString()} nodes, {agent.data.pods.toLocaleString()} pods and {agent.data.pdbs.toLocaleString()}{' '}
                disruption budgets discovered
              </span>
            </>
          ) : revoked ? (
            <>
              <strong>This cluster&apos;s agent token was revoked</strong>
              <span>
                <Button size="sm" onClick={onRestart}>
                  Start again
                </Button>
              </span>
            </>
          ) : (
            <>
              <strong>Waiting for first heartbeat…</strong>
              <span className="muted">
                Nothing yet? Check that the agent pod is running and that the cluster can reach Spot Optimizer over HTTPS.
              </span>
            </>
          )}
        </span>
      </div>
      {agent.isError && <p className="field__error">Could not read the agent status: {errorMessage(agent.error)} Retrying.</p>}
      <div className="row row--between">
        {connected ? (
          <Link to="/clusters" className="btn btn--ghost">
            Back to clusters
          </Link>
        ) : (
          <Button variant="ghost" onClick={onBack}>
            Back to the install command
          </Button>
        )}
        <Button variant={connected ? 'primary' : 'secondary'} onClick={() => navigate(`/clusters/${encodeURIComponent(cluster.id)}`)}>
          Go to cluster
        </Button>
      </div>
    </div>
  );
}
