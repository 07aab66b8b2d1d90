import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { errorMessage } from '../../../api/errors';
import type { LabAbTest, LabCandidate, LabDecision, LabModel, LabSwitch } from '../../../api/types';
import { isSuperAdmin, useMe } from '../../../auth/MeContext';
import { Badge, Button, Card, EmptyState, ErrorState, Modal, SelectField, SkeletonRows, Table, TextField, useToast, type BadgeTone, type Column } from '../../../components';
import { PageHeader } from '../../../layout/PageHeader';
import { formatDateTime } from '../../../lib/format';
import { NotFoundPage } from '../../errors/NotFoundPage';
import { AbCharts } from './AbCharts';
import {
  accountsOf,
  isSwitchRunning,
  labKey,
  labKeys,
  seriesOf,
  useAbTest,
  useAbTests,
  useChecklist,
  useGraduate,
  useLabCandidates,
  useLabEvents,
  useLabSwitch,
  useLabSwitches,
  useStartAbTest,
  useStartSwitch,
  useStopAbTest,
  verdictRows,
} from './api';
import { ChecklistPanel } from './ChecklistPanel';
import { PhaseTimeline } from './PhaseTimeline';
import { VerdictTable } from './VerdictTable';

export const LAB_PATH = '/admin/lab';

/** The Lab (platform super-admins only; anyone else finds no such page). */
export function LabPage() {
  const me = useMe();
  if (!isSuperAdmin(me) || me.impersonated_by) return <NotFoundPage />;
  return <Lab />;
}

const STATUS_TONE: Record<string, BadgeTone> = {
  queued: 'neutral',
  running: 'info',
  succeeded: 'success',
  completed: 'success',
  stopped: 'neutral',
  failed: 'danger',
};

function StatusBadge({ status }: { status: string }) {
  return <Badge tone={STATUS_TONE[status] ?? 'neutral'}>{status}</Badge>;
}

function modelName(models: LabModel[], id: string): string {
  return models.find((m) => m.id === id)?.name ?? id;
}

function Lab() {
  const queryClient = useQueryClient();
  const candidates = useLabCandidates();
  const [switchId, setSwitchId] = useState<string | null>(null);
  const [testId, setTestId] = useState<string | null>(null);
  // Live phases and ticks refresh what is on screen at once.
  useLabEvents((type, data) => {
    const id = (key: string) => (typeof data[key] === 'string' ? (data[key] as string) : null);
    if (type === 'lab.phase' || type === 'lab.switch') {
      const s = id('switch_id');
      if (s) void queryClient.invalidateQueries({ queryKey: labKeys.switchKey(s) });
      if (type === 'lab.switch') {
        void queryClient.invalidateQueries({ queryKey: labKeys.switchesKey });
        void queryClient.invalidateQueries({ queryKey: [...labKey, 'checklist'] });
      }
    } else {
      const t = id('test_id');
      if (t) void queryClient.invalidateQueries({ queryKey: labKeys.abTestKey(t) });
      if (type === 'lab.ab_test') {
        void queryClient.invalidateQueries({ queryKey: labKeys.abTestsKey });
        void queryClient.invalidateQueries({ queryKey: [...labKey, 'checklist'] });
      }
    }
  });
  const models = candidates.data?.models ?? [];
  return (
    <>
      <PageHeader
        title="The Lab"
        subtitle="Test a risk model on real capacity before it reaches customers: switch one node live, run two models side by side, then graduate the winner once its safety checklist passes."
      />
      {candidates.isError && <ErrorState error={candidates.error} onRetry={() => void candidates.refetch()} />}
      <div className="stack">
        <div className="lab-grid">
          <SwitchForm candidates={candidates.data?.instances ?? []} models={models} loading={candidates.isPending} onStarted={setSwitchId} />
          <SwitchPanel switchId={switchId} models={models} onSelect={setSwitchId} />
        </div>
        <AbSection candidates={candidates.data?.instances ?? []} models={models} testId={testId} onSelect={setTestId} />
        <GraduationCard models={models} onGraduated={() => void queryClient.invalidateQueries({ queryKey: labKey })} />
      </div>
    </>
  );
}

function instanceLabel(c: LabCandidate): string {
  const where = c.cluster_name ? `${c.cluster_name}` : 'standalone';
  return `${c.instance_id} · ${c.instance_type} ${c.lifecycle === 'spot' ? 'spot' : 'on-demand'} · ${c.az} · ${where}${c.lab_ready ? ' · data volume' : ''}`;
}

function SwitchForm({ candidates, models, loading, onStarted }: { candidates: LabCandidate[]; models: LabModel[]; loading: boolean; onStarted: (id: string) => void }) {
  const start = useStartSwitch();
  const toast = useToast();
  const switchable = useMemo(
    () => candidates.filter((c) => c.switchable && !c.in_ab_test).sort((a, b) => Number(b.lab_ready) - Number(a.lab_ready)),
    [candidates],
  );
  const groups = useMemo(() => {
    const g = new Map<string, LabCandidate[]>();
    for (const c of switchable) {
      const k = `${c.organization_name} · ${c.account_name} (${c.provider})`;
      g.set(k, [...(g.get(k) ?? []), c]);
    }
    return [...g.entries()];
  }, [switchable]);
  const [instance, setInstance] = useState('');
  const [model, setModel] = useState('');
  const [targetType, setTargetType] = useState('');
  const [error, setError] = useState<{ field?: string; message: string } | null>(null);
  useEffect(() => {
    const first = switchable[0];
    if (instance === '' && first) setInstance(`${first.account_id}|${first.instance_id}`);
  }, [instance, switchable]);
  useEffect(() => {
    const newest = models[models.length - 1];
    if (model === '' && newest) setModel(newest.id);
  }, [model, models]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const [accountId = '', instanceId = ''] = instance.split('|');
    start.mutate(
      { instance_id: instanceId, account_id: accountId, model_id: model, ...(targetType.trim() ? { target_type: targetType.trim() } : {}) },
      {
        onSuccess: (s) => {
          onStarted(s.switch.id);
          toast.success(`Live switch of ${s.switch.instance_id} started.`);
        },
        onError: (err) => {
          const field = (err as { field?: string }).field;
          setError({ field, message: errorMessage(err) });
        },
      },
    );
  };
  return (
    <Card title="Live single-instance switch">
      {loading ? (
        <SkeletonRows rows={3} />
      ) : switchable.length === 0 ? (
        <EmptyState
          title="No node can be switched"
          description="A live switch needs a running node of a cluster whose agent is connected. Link a simulator account and add its clusters' agents, or use the demo's Acme Lab account."
        />
      ) : (
        <form className="lab-form" onSubmit={submit} aria-label="Live switch">
          <SelectField label="Running instance" value={instance} onChange={(e) => setInstance(e.target.value)} error={error?.field === 'instance_id' ? error.message : undefined}>
            {groups.map(([group, items]) => (
              <optgroup key={group} label={group}>
                {items.map((c) => (
                  <option key={`${c.account_id}|${c.instance_id}`} value={`${c.account_id}|${c.instance_id}`}>
                    {instanceLabel(c)}
                  </option>
                ))}
              </optgroup>
            ))}
          </SelectField>
          <div className="lab-form__row">
            <SelectField label="Target model" value={model} onChange={(e) => setModel(e.target.value)} error={error?.field === 'model_id' ? error.message : undefined}>
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name} ({m.status})
                </option>
              ))}
            </SelectField>
            <TextField
              label="Target instance type (optional)"
              placeholder="e.g. c5.large"
              value={targetType}
              onChange={(e) => setTargetType(e.target.value)}
              hint="Empty: the model picks the pool."
              error={error?.field === 'target_type' ? error.message : undefined}
            />
          </div>
          {error && !['instance_id', 'model_id', 'target_type'].includes(error.field ?? '') && (
            <p className="field__error" role="alert">
              {error.message}
            </p>
          )}
          <p className="muted">
            The replacement is launched first; the old node is cordoned and drained through the cluster&apos;s agent only once the new one is Ready, its data volumes move
            across, then it is terminated. This changes real capacity in the customer&apos;s account.
          </p>
          <div>
            <Button type="submit" variant="primary" loading={start.isPending}>
              ⚡ Execute live switch
            </Button>
          </div>
        </form>
      )}
    </Card>
  );
}

function SwitchPanel({ switchId, models, onSelect }: { switchId: string | null; models: LabModel[]; onSelect: (id: string) => void }) {
  const list = useLabSwitches();
  const latest = list.data?.items[0]?.id ?? null;
  const shownId = switchId ?? latest;
  const sw = useLabSwitch(shownId);
  const columns: Column<LabSwitch>[] = [
    { key: 'instance', header: 'Instance', render: (s) => <span className="mono">{s.instance_id}</span> },
    { key: 'to', header: 'To', render: (s) => (s.chosen_type ? `${s.chosen_type} ${s.chosen_lifecycle === 'spot' ? 'spot' : 'on-demand'} · ${s.chosen_az}` : '—') },
    { key: 'model', header: 'Model', render: (s) => modelName(models, s.model_id) },
    { key: 'status', header: 'Status', render: (s) => <StatusBadge status={s.status} /> },
    { key: 'at', header: 'Started', render: (s) => formatDateTime(s.created_at) },
  ];
  return (
    <Card title="Switch telemetry">
      {sw.data ? (
        <div className="stack">
          <div className="row">
            <strong className="mono">{sw.data.instance_id}</strong>
            <span aria-hidden="true">→</span>
            <span className="mono">{sw.data.new_instance_id ?? (sw.data.chosen_type ? `${sw.data.chosen_type} (launching)` : 'choosing a pool…')}</span>
            <StatusBadge status={sw.data.status} />
            {isSwitchRunning(sw.data) && <span className="muted">live</span>}
          </div>
          <PhaseTimeline sw={sw.data} />
          {sw.data.error && (
            <p className="field__error" role="alert">
              {sw.data.error}
            </p>
          )}
        </div>
      ) : (
        <p className="muted">No switch yet. Pick a node and a model, then execute a live switch: each phase is timed here as it happens.</p>
      )}
      {(list.data?.items.length ?? 0) > 1 && (
        <details className="lab-history">
          <summary>Recent switches</summary>
          <Table caption="Recent switches" columns={columns} rows={list.data?.items ?? []} rowKey={(s) => s.id} onRowClick={(s) => onSelect(s.id)} rowLabel={(s) => `Show switch of ${s.instance_id}`} />
        </details>
      )}
    </Card>
  );
}

function AbSection({ candidates, models, testId, onSelect }: { candidates: LabCandidate[]; models: LabModel[]; testId: string | null; onSelect: (id: string) => void }) {
  const tests = useAbTests();
  const shownId = testId ?? tests.data?.items[0]?.id ?? null;
  const detail = useAbTest(shownId);
  const stop = useStopAbTest();
  const toast = useToast();
  const columns: Column<LabAbTest>[] = [
    { key: 'name', header: 'Test', render: (t) => t.name },
    { key: 'status', header: 'Status', render: (t) => <StatusBadge status={t.status} /> },
    { key: 'ticks', header: 'Ticks', render: (t) => t.ticks, align: 'right' },
    { key: 'ends', header: 'Ends', render: (t) => formatDateTime(t.finished_at ?? t.ends_at) },
  ];
  const d = detail.data;
  const { rows, summary } = verdictRows(d);
  const series = d ? seriesOf(d.samples) : [];
  const nameA = d ? modelName(models, d.test.model_a) : '';
  const nameB = d ? modelName(models, d.test.model_b) : '';
  return (
    <Card title="Parallel A/B test">
      <div className="lab-grid">
        <AbForm candidates={candidates} models={models} onStarted={onSelect} />
        <div className="stack">
          {(tests.data?.items.length ?? 0) > 0 ? (
            <Table caption="A/B tests" columns={columns} rows={tests.data?.items ?? []} rowKey={(t) => t.id} onRowClick={(t) => onSelect(t.id)} rowLabel={(t) => `Show ${t.name}`} />
          ) : (
            <p className="muted">No A/B test yet.</p>
          )}
        </div>
      </div>
      {d && (
        <div className="stack">
          <div className="row">
            <h3>{d.test.name}</h3>
            <StatusBadge status={d.test.status} />
            <span className="muted">
              A = <strong>{nameA}</strong> on tag <code>{d.test.tag_a}</code> ({d.members.filter((m) => m.arm === 'a').length} instances) · B = <strong>{nameB}</strong> on tag{' '}
              <code>{d.test.tag_b}</code> ({d.members.filter((m) => m.arm === 'b').length} instances) · a decision every {d.test.tick_seconds} s
            </span>
            {d.test.status === 'running' && (
              <Button
                size="sm"
                variant="danger"
                loading={stop.isPending}
                onClick={() => stop.mutate(d.test.id, { onError: (e) => toast.error(errorMessage(e)) })}
              >
                Stop test
              </Button>
            )}
          </div>
          <AbCharts data={series} modelA={nameA} modelB={nameB} />
          <h3>Verdict{d.test.status === 'running' ? ' so far' : ''}</h3>
          {summary && <p>{summary}</p>}
          <VerdictTable rows={rows} modelA={nameA} modelB={nameB} />
          <DecisionTable decisions={d.decisions} models={models} />
        </div>
      )}
    </Card>
  );
}

function DecisionTable({ decisions, models }: { decisions: LabDecision[]; models: LabModel[] }) {
  const shown = decisions.filter((x) => x.action !== 'keep').slice(0, 20);
  const kept = decisions.length - decisions.filter((x) => x.action !== 'keep').length;
  const columns: Column<LabDecision>[] = [
    { key: 'tick', header: 'Tick', render: (x) => x.tick, align: 'right' },
    { key: 'arm', header: 'Set', render: (x) => x.arm.toUpperCase() },
    { key: 'model', header: 'Decided by', render: (x) => modelName(models, x.model_id) },
    { key: 'action', header: 'Decision', render: (x) => x.action },
    { key: 'pool', header: 'From → to', render: (x) => `${x.from_pool} → ${x.to_pool ?? '—'}` },
    { key: 'outcome', header: 'Outcome', render: (x) => x.outcome },
  ];
  return (
    <details open={shown.length > 0}>
      <summary>
        Decisions that changed capacity ({shown.length} shown; {kept} “keep” decisions not listed)
      </summary>
      {shown.length > 0 ? <Table caption="Decisions" columns={columns} rows={shown} rowKey={(x) => `${x.tick}-${x.arm}-${x.slot}`} /> : <p className="muted">Every instance stayed where it was.</p>}
    </details>
  );
}

function AbForm({ candidates, models, onStarted }: { candidates: LabCandidate[]; models: LabModel[]; onStarted: (id: string) => void }) {
  const accounts = useMemo(() => accountsOf(candidates).filter((a) => a.standalone >= 2), [candidates]);
  const start = useStartAbTest();
  const [account, setAccount] = useState('');
  const [modelA, setModelA] = useState('');
  const [modelB, setModelB] = useState('');
  const [minutes, setMinutes] = useState('30');
  const [tick, setTick] = useState('60');
  const [error, setError] = useState<{ field?: string; message: string } | null>(null);
  useEffect(() => {
    const first = accounts[0];
    if (account === '' && first) setAccount(first.id);
  }, [account, accounts]);
  useEffect(() => {
    const oldest = models[0];
    const newest = models[models.length - 1];
    if (modelA === '' && oldest) setModelA(oldest.id);
    if (modelB === '' && newest && models.length > 1) setModelB(newest.id);
  }, [modelA, modelB, models]);
  const fieldError = (f: string) => (error?.field === f ? error.message : undefined);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    start.mutate(
      { account_id: account, model_a: modelA, model_b: modelB, duration_minutes: Number(minutes), tick_seconds: Number(tick) },
      {
        onSuccess: (d) => onStarted(d.test.id),
        onError: (err) => setError({ field: (err as { field?: string }).field, message: errorMessage(err) }),
      },
    );
  };
  if (accounts.length === 0) {
    return <EmptyState title="No account for an A/B test" description="An A/B test needs a linked account with at least two running instances that are not Kubernetes nodes." />;
  }
  return (
    <form className="lab-form" onSubmit={submit} aria-label="A/B test">
      <SelectField label="Account" value={account} onChange={(e) => setAccount(e.target.value)} error={fieldError('account_id') ?? fieldError('instance_ids')}>
        {accounts.map((a) => (
          <option key={a.id} value={a.id}>
            {a.label} — {a.standalone} standalone instances
          </option>
        ))}
      </SelectField>
      <div className="lab-form__row">
        <SelectField label="Model A (tag lab-stable)" value={modelA} onChange={(e) => setModelA(e.target.value)} error={fieldError('model_a')}>
          {models.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name}
            </option>
          ))}
        </SelectField>
        <SelectField label="Model B (tag lab-beta)" value={modelB} onChange={(e) => setModelB(e.target.value)} error={fieldError('model_b')}>
          {models.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name}
            </option>
          ))}
        </SelectField>
      </div>
      <div className="lab-form__row">
        <TextField label="Duration (minutes)" type="number" min={1} max={10080} value={minutes} onChange={(e) => setMinutes(e.target.value)} error={fieldError('duration_minutes')} />
        <TextField label="Decide every (seconds)" type="number" min={5} max={3600} value={tick} onChange={(e) => setTick(e.target.value)} error={fieldError('tick_seconds')} />
      </div>
      {error && !error.field && (
        <p className="field__error" role="alert">
          {error.message}
        </p>
      )}
      <p className="muted">The account&apos;s standalone instances are split deterministically into the two sets; each model moves its own set&apos;s instances.</p>
      <div>
        <Button type="submit" variant="primary" loading={start.isPending}>
          Start A/B test
        </Button>
      </div>
    </form>
  );
}

function GraduationCard({ models, onGraduated }: { models: LabModel[]; onGraduated: () => void }) {
  const candidates = models.filter((m) => m.status === 'validated' || m.status === 'retired');
  const [modelId, setModelId] = useState('');
  const [confirming, setConfirming] = useState(false);
  const checklist = useChecklist(modelId || null);
  const graduate = useGraduate();
  const toast = useToast();
  useEffect(() => {
    const first = candidates[0];
    if (modelId === '' && first) setModelId(first.id);
  }, [modelId, candidates]);
  return (
    <Card title="Model graduation">
      {candidates.length === 0 ? (
        <p className="muted">No model waits for graduation. Upload one on the AI model page.</p>
      ) : (
        <div className="stack">
          <SelectField label="Model" value={modelId} onChange={(e) => setModelId(e.target.value)}>
            {candidates.map((m) => (
              <option key={m.id} value={m.id}>
                {m.name} ({m.status})
              </option>
            ))}
          </SelectField>
          {checklist.isError && <ErrorState error={checklist.error} onRetry={() => void checklist.refetch()} />}
          {checklist.data && <ChecklistPanel checklist={checklist.data} />}
          <div>
            <Button variant="primary" disabled={!checklist.data?.passed} onClick={() => setConfirming(true)}>
              Graduate to production
            </Button>
            {checklist.data && !checklist.data.passed && <span className="muted"> Graduation opens once every check passes.</span>}
          </div>
        </div>
      )}
      <Modal
        open={confirming && checklist.data !== undefined}
        onClose={() => setConfirming(false)}
        title="Graduate this model to production?"
        description="It becomes the active model in every account and cluster actor at once; the checklist below is recorded with the graduation."
        footer={
          <>
            <Button onClick={() => setConfirming(false)}>Cancel</Button>
            <Button
              variant="primary"
              loading={graduate.isPending}
              onClick={() =>
                graduate.mutate(modelId, {
                  onSuccess: (g) => {
                    setConfirming(false);
                    onGraduated();
                    toast.success(`${modelName(models, g.model_id)} is now the active model.`);
                  },
                  onError: (e) => {
                    setConfirming(false);
                    toast.error(errorMessage(e));
                    void checklist.refetch();
                  },
                })
              }
            >
              Graduate model
            </Button>
          </>
        }
      >
        {checklist.data && <ChecklistPanel checklist={checklist.data} />}
      </Modal>
    </Card>
  );
}
