import { useEffect, useId, useMemo, useRef, useState, type ReactNode } from 'react';
import { useFieldArray, useForm, useWatch, type FieldPath } from 'react-hook-form';
import { Link } from 'react-router-dom';
import { ApiError, errorMessage } from '../../api/errors';
import type { ClusterPolicyInput, PolicyImpact, Template } from '../../api/types';
import { formatUsdCents } from '../../lib/format';
import { Badge, Button, Card, CheckboxField, ErrorState, SelectField, SkeletonRows, TextField, useToast } from '../../components';
import {
  AGGRESSIVENESS,
  ARCHITECTURES,
  DEFAULT_EXCLUDED_LABELS,
  DEFAULT_RIGHTSIZE_MIN_SAVINGS,
  RIGHTSIZE_MODES,
  SPOT_PREFERENCES,
  CAPACITY_TYPES,
  DEFAULT_DISRUPTION_BUDGET,
  DEFAULT_RISK_PREMIUM,
  METHODS,
  STRATEGIES,
  useClusterPolicy,
  usePolicyImpact,
  useSaveClusterPolicy,
  type Aggressiveness,
  type AllocationStrategy,
  type Architecture,
  type CapacityType,
  type ClusterPolicy,
  type ConsolidationMethod,
  type LabelPair,
  type RightsizeMode,
  type RightsizePercentile,
  type SpotPreference,
  PERCENTILES,
  formatSelector,
  parseSelector,
} from './policy';
import { PolicyHistoryDialog, policyVersionLine } from './PolicyHistory';
import '../../styles/policy.css';
import { useTemplates } from '../templates/api';
import { templatePath } from '../templates/spec';
import { useHibernationSchedule } from '../hibernation/api';
import { HIBERNATION_PATH } from '../hibernation/HibernationPage';
import { changedKeys, layerOfField, partialPolicy, POLICY_CARDS, useCardImpacts, type CardId, type CardImpact, type Layer } from './policyCards';

/** The form's shape: lists are edited as comma-separated text. */
interface PolicyForm {
  aggressiveness: Aggressiveness;
  method: ConsolidationMethod;
  excluded_namespaces: string;
  stabilization_window_secs: number;
  template: {
    allowed_families: string;
    architectures: Architecture[];
    excluded_sizes: string;
    capacity_type: CapacityType;
    strategy: AllocationStrategy;
    allow_burstable: boolean;
    on_demand_fallback: boolean;
  };
  dry_run: boolean;
  maintenance_mode: boolean;
  rightsize_percentile: RightsizePercentile;
  /** Percent in the form (10–50); a fraction on the wire. */
  rightsize_headroom: number;
  /** Optional limits are null when the input is empty. */
  disruption_budget: { max_percent: number; max_nodes: number | null; max_waves: number | null };
  /** The selector is edited as `key=value, key2=value2` text. */
  on_demand_minimums: OnDemandMinimumRow[];
  risk_premium: number;
  /** The organization template the policy follows; '' when it carries its own. */
  template_id: string;
  /** `key=value, key2=value2` text. */
  excluded_labels: string;
  spot_affinity: { namespace: string; mode: SpotPreference }[];
  rightsize_mode: RightsizeMode;
  rightsize_min_monthly_savings: number;
  autoscaling: boolean;
  multi_az_spread: boolean;
}

const LAYERS: { id: Layer; label: string }[] = [
  { id: 'infrastructure', label: 'Infrastructure layer' },
  { id: 'workload', label: 'Workload layer' },
];

/** `a=b, c=d` → pairs (a key may repeat with another value); null when a part is not `key=value`. */
export function parseLabelPairs(text: string): LabelPair[] | null {
  const pairs: LabelPair[] = [];
  for (const part of text.split(',')) {
    const pair = part.trim();
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) return null;
    pairs.push({ key: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim() });
  }
  return pairs;
}

const formatLabelPairs = (pairs: LabelPair[]) => pairs.map((p) => `${p.key}=${p.value}`).join(', ');

interface OnDemandMinimumRow {
  namespace: string;
  selector: string;
  percent: number | null;
  replicas: number | null;
}

const ROW_FIELDS = ['namespace', 'selector', 'percent', 'replicas'] as const;
const ROW_LABELS: Record<(typeof ROW_FIELDS)[number], string> = {
  namespace: 'Namespace',
  selector: 'Pod labels',
  percent: 'Minimum On-Demand share (%)',
  replicas: 'Minimum On-Demand replicas',
};
const EMPTY_ROW: OnDemandMinimumRow = { namespace: '', selector: '', percent: null, replicas: null };

/** An empty number input is null (no limit), anything else a number (NaN when not one). */
const optionalNumber = (value: unknown): number | null => (value === '' || value === null || value === undefined ? null : Number(value));

const FIELDS: FieldPath<PolicyForm>[] = [
  'aggressiveness',
  'method',
  'excluded_namespaces',
  'stabilization_window_secs',
  'template.allowed_families',
  'template.architectures',
  'template.excluded_sizes',
  'template.capacity_type',
  'template.strategy',
  'template.allow_burstable',
  'template.on_demand_fallback',
  'dry_run',
  'maintenance_mode',
  'rightsize_percentile',
  'rightsize_headroom',
  'disruption_budget.max_percent',
  'disruption_budget.max_nodes',
  'disruption_budget.max_waves',
  'risk_premium',
  'template_id',
  'excluded_labels',
  'rightsize_mode',
  'rightsize_min_monthly_savings',
  'autoscaling',
  'multi_az_spread',
];

const joinList = (values: string[]) => values.join(', ');
const splitList = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((value) => value.trim())
    .filter(Boolean);

function toForm(policy: ClusterPolicy): PolicyForm {
  const budget = policy.disruption_budget ?? DEFAULT_DISRUPTION_BUDGET;
  // The template's name and the version's metadata are shown, never sent back.
  const { template_id, template_name: _name, version: _version, updated_at: _at, updated_by: _by, ...rest } = policy;
  return {
    ...rest,
    template_id: template_id ?? '',
    rightsize_headroom: Math.round((policy.rightsize_headroom ?? 0.2) * 100),
    disruption_budget: {
      max_percent: budget.max_percent ?? DEFAULT_DISRUPTION_BUDGET.max_percent,
      max_nodes: budget.max_nodes ?? null,
      max_waves: budget.max_waves ?? null,
    },
    on_demand_minimums: (policy.on_demand_minimums ?? []).map((rule) => ({
      namespace: rule.namespace ?? '',
      selector: formatSelector(rule.selector),
      percent: rule.percent ?? null,
      replicas: rule.replicas ?? null,
    })),
    risk_premium: policy.risk_premium ?? DEFAULT_RISK_PREMIUM,
    excluded_namespaces: joinList(policy.excluded_namespaces),
    excluded_labels: formatLabelPairs(policy.excluded_labels ?? DEFAULT_EXCLUDED_LABELS),
    spot_affinity: (policy.spot_affinity ?? []).map((rule) => ({ ...rule })),
    rightsize_mode: policy.rightsize_mode ?? 'recommend',
    rightsize_min_monthly_savings: policy.rightsize_min_monthly_savings ?? DEFAULT_RIGHTSIZE_MIN_SAVINGS,
    autoscaling: policy.autoscaling ?? true,
    multi_az_spread: policy.multi_az_spread ?? false,
    template: {
      ...policy.template,
      allowed_families: joinList(policy.template.allowed_families),
      excluded_sizes: joinList(policy.template.excluded_sizes),
      // A lone checkbox would register as a boolean: keep arrays arrays.
      architectures: [...policy.template.architectures],
    },
  };
}

function fromForm({ template_id, ...form }: PolicyForm): ClusterPolicyInput {
  const { max_percent, max_nodes, max_waves } = form.disruption_budget;
  return {
    ...form,
    // Left out, the policy carries its own template (and any link is dropped).
    ...(template_id !== '' ? { template_id } : {}),
    excluded_namespaces: splitList(form.excluded_namespaces),
    stabilization_window_secs: Number(form.stabilization_window_secs),
    rightsize_headroom: Number(form.rightsize_headroom) / 100,
    // An empty optional limit is left out: the server then applies no limit.
    disruption_budget: {
      max_percent: Number(max_percent),
      ...(max_nodes !== null ? { max_nodes } : {}),
      ...(max_waves !== null ? { max_waves } : {}),
    },
    on_demand_minimums: form.on_demand_minimums.map((row) => ({
      ...(row.namespace.trim() !== '' ? { namespace: row.namespace.trim() } : {}),
      selector: parseSelector(row.selector) ?? {},
      ...(row.percent !== null ? { percent: row.percent } : {}),
      ...(row.replicas !== null ? { replicas: row.replicas } : {}),
    })),
    risk_premium: Number(form.risk_premium),
    excluded_labels: parseLabelPairs(form.excluded_labels) ?? [],
    spot_affinity: form.spot_affinity.map((rule) => ({ namespace: rule.namespace.trim(), mode: rule.mode })),
    rightsize_min_monthly_savings: Number(form.rightsize_min_monthly_savings),
    template: {
      ...form.template,
      allowed_families: splitList(form.template.allowed_families),
      excluded_sizes: splitList(form.template.excluded_sizes),
      architectures: Array.isArray(form.template.architectures) ? form.template.architectures : [],
    },
  };
}

/**
 * The server names nested fields like `template.architectures[0]` or
 * `on_demand_minimums[1].percent`: map them to this form's inputs. A rule's field named
 * without its index (`on_demand_minimums.percent`) goes to the only rule, else to the
 * editor as a whole (`rules`).
 */
function formField(field: string | undefined, rules: number): FieldPath<PolicyForm> | 'rules' | undefined {
  if (field === undefined) return undefined;
  const rule = /^on_demand_minimums\[(\d+)\]\.(\w+)$/.exec(field);
  if (rule) {
    const index = Number(rule[1]);
    const name = ROW_FIELDS.find((f) => f === rule[2]);
    return name !== undefined && index < rules ? `on_demand_minimums.${index}.${name}` : 'rules';
  }
  const path = field.replace(/\[\d+\]/g, '');
  if (path === 'on_demand_minimums' || path.startsWith('on_demand_minimums.')) {
    const name = ROW_FIELDS.find((f) => `on_demand_minimums.${f}` === path);
    return name !== undefined && rules === 1 ? `on_demand_minimums.0.${name}` : 'rules';
  }
  return FIELDS.find((name) => name === path);
}

/** A rule error the form cannot place on one input, prefixed with the input's label when the server names one. */
function rulesMessage(error: unknown): string {
  const field = error instanceof ApiError ? error.field : undefined;
  const name = ROW_FIELDS.find((f) => field?.replace(/\[\d+\]/g, '') === `on_demand_minimums.${f}`);
  const rule = field !== undefined ? /^on_demand_minimums\[(\d+)\]/.exec(field) : null;
  const where = [rule ? `Rule ${Number(rule[1]) + 1}` : undefined, name ? ROW_LABELS[name] : undefined].filter(Boolean).join(', ');
  return where ? `${where}: ${errorMessage(error)}` : errorMessage(error);
}

/** The cluster's optimization policy: editable by owners and admins, read-only for viewers. */
export function PolicyCard({ clusterId, canEdit }: { clusterId: string; canEdit: boolean }) {
  const policy = useClusterPolicy(clusterId);
  const [historyOpen, setHistoryOpen] = useState(false);
  const title = (
    <div className="policy-heading">
      <h2>Optimization policy</h2>
      {policy.isSuccess && <p className="muted policy-heading__version">{policyVersionLine(policy.data)}</p>}
    </div>
  );
  return (
    <Card
      title={title}
      actions={
        <Button size="sm" onClick={() => setHistoryOpen(true)} aria-haspopup="dialog">
          History
        </Button>
      }
    >
      {policy.isPending && <SkeletonRows rows={5} label="Loading policy" />}
      {policy.isError && <ErrorState error={policy.error} title="Could not load the policy" onRetry={() => void policy.refetch()} />}
      {policy.isSuccess && <PolicyEditor clusterId={clusterId} policy={policy.data} canEdit={canEdit} />}
      <PolicyHistoryDialog clusterId={clusterId} current={policy.data?.version} canEdit={canEdit} open={historyOpen} onClose={() => setHistoryOpen(false)} />
    </Card>
  );
}

function PolicyEditor({ clusterId, policy, canEdit }: { clusterId: string; policy: ClusterPolicy; canEdit: boolean }) {
  const save = useSaveClusterPolicy(clusterId);
  const impact = usePolicyImpact(clusterId);
  const toast = useToast();
  const formId = useId();
  const architecturesLegend = useId();
  const {
    register,
    control,
    handleSubmit,
    reset,
    setError,
    setValue,
    formState: { errors, isDirty, isSubmitting },
  } = useForm<PolicyForm>({ defaultValues: toForm(policy) });
  const rules = useFieldArray({ control, name: 'on_demand_minimums' });
  const affinity = useFieldArray({ control, name: 'spot_affinity' });
  const [layer, setLayer] = useState<Layer>('infrastructure');
  // The saved policy and the edited one, as the server reads them: the badges compare them.
  const baseInput = useMemo(() => fromForm(toForm(policy)), [policy]);
  const values = useWatch({ control }) as PolicyForm;
  const nextInput = fromForm({ ...toForm(policy), ...values });
  const changed = isDirty ? changedKeys(baseInput, nextInput) : [];
  const dirtyCards = POLICY_CARDS.filter((card) => card.keys.some((key) => changed.includes(key)));
  const impacts = useCardImpacts(clusterId, baseInput, nextInput, canEdit && isDirty);
  const templates = useTemplates();
  const templateOptions = linkableTemplates(templates.data, policy);
  const linkedId = useWatch({ control, name: 'template_id' });
  const linked = templateOptions.find((template) => template.id === linkedId);

  // A chosen template's fields replace the inline ones (read-only while it is linked).
  const applyTemplate = (id: string) => {
    const spec = templates.data?.find((template) => template.id === id)?.spec;
    if (spec === undefined) return;
    const options = { shouldDirty: true } as const;
    setValue('template.allowed_families', joinList(spec.families), options);
    setValue('template.architectures', [...spec.architectures], options);
    setValue('template.excluded_sizes', joinList(spec.excluded_sizes), options);
    setValue('template.capacity_type', spec.capacity_type, options);
    setValue('template.strategy', spec.strategy, options);
    setValue('template.allow_burstable', spec.allow_burstable, options);
    setValue('template.on_demand_fallback', spec.on_demand_fallback, options);
  };

  // A saved (or refetched) policy becomes the new baseline. Not on mount: the form starts from
  // it, and a reset then would remount the rule editors under the user's first keystrokes.
  const baseline = useRef(policy);
  useEffect(() => {
    if (baseline.current === policy) return;
    baseline.current = policy;
    reset(toForm(policy));
  }, [policy, reset]);

  // A 422 goes under the field (or the rule) it names; anything else above the form.
  const showServerError = (error: unknown, values: PolicyForm) => {
    const named = error instanceof ApiError ? error.field : undefined;
    const errorLayer = named !== undefined ? layerOfField(named) : undefined;
    if (errorLayer !== undefined) setLayer(errorLayer);
    const field = error instanceof ApiError ? formField(error.field, values.on_demand_minimums.length) : undefined;
    if (field === 'rules') setError('root.rules', { type: 'server', message: rulesMessage(error) });
    else if (field !== undefined) setError(field, { type: 'server', message: errorMessage(error) }, { shouldFocus: true });
    else setError('root.server', { type: 'server', message: errorMessage(error) });
  };

  // An invalid input in the other tab: open that tab so the message is seen.
  const onInvalid = (invalid: Record<string, unknown>) => {
    const first = Object.keys(invalid)[0];
    const errorLayer = first !== undefined ? layerOfField(first) : undefined;
    if (errorLayer !== undefined) setLayer(errorLayer);
  };

  const onPreview = handleSubmit(async (values) => {
    try {
      await impact.mutateAsync(fromForm(values));
    } catch (error) {
      showServerError(error, values);
    }
  }, onInvalid);

  const onSubmit = handleSubmit(async (values) => {
    try {
      const next = fromForm(values);
      const patch = partialPolicy(baseInput, next);
      await save.mutateAsync(patch !== null ? { patch } : { replace: next });
      toast.success('Optimization policy saved.');
    } catch (error) {
      showServerError(error, values);
    }
  }, onInvalid);

  const architecturesError = errors.template?.architectures?.message;
  return (
    <form id={formId} className="stack" onSubmit={onSubmit} noValidate aria-label="Optimization policy">
      {!canEdit && <p className="muted">Only owners and admins can change the policy.</p>}
      {errors.root?.server && (
        <div className="form-alert" role="alert">
          {errors.root.server.message}
        </div>
      )}
      <div role="tablist" aria-label="Policy layers" className="policy-tabs">
        {LAYERS.map((l) => (
          <button
            key={l.id}
            type="button"
            role="tab"
            id={`${formId}-tab-${l.id}`}
            aria-selected={layer === l.id}
            aria-controls={`${formId}-panel-${l.id}`}
            className={layer === l.id ? 'policy-tabs__tab policy-tabs__tab--active' : 'policy-tabs__tab'}
            onClick={() => setLayer(l.id)}
          >
            {l.label}
            {dirtyCards.some((card) => card.layer === l.id) && <span className="policy-tabs__dot" aria-label=" (changed)" />}
          </button>
        ))}
      </div>
      <fieldset className="policy-layers" disabled={!canEdit}>
        <div role="tabpanel" id={`${formId}-panel-infrastructure`} aria-labelledby={`${formId}-tab-infrastructure`} hidden={layer !== 'infrastructure'} className="policy">
          <PolicySection card="autoscaling" impact={impacts.cards.autoscaling} intro="Which instances new nodes may use and how spot capacity is bought.">
              <CheckboxField
                label="Autoscaling on"
                hint="Off: the cluster never gets a new node, even for pending pods (they stay pending). Optimize Now then only deletes empty nodes and drains under-used ones onto existing nodes — no replacements, no moves to new spot capacity."
                error={errors.autoscaling?.message}
                {...register('autoscaling')}
              />
              <SelectField
                label="Node template"
                hint={linkedId === '' ? 'Or follow one of your organization\'s node templates.' : undefined}
                error={errors.template_id?.message}
                {...register('template_id', { onChange: (event: { target: { value: string } }) => applyTemplate(event.target.value) })}
              >
                <option value="">This cluster&apos;s own template</option>
                {templateOptions.map((template) => (
                  <option key={template.id} value={template.id}>
                    {template.name}
                    {template.is_default ? ' (default)' : ''}
                  </option>
                ))}
              </SelectField>
              {linkedId !== '' && (
                <p className="muted policy__link-note">
                  The fields below come from{' '}
                  {linked ? <Link to={templatePath(linked.id)}>{linked.name}</Link> : 'the linked template'}. Edit the template to change them; every cluster
                  that uses it follows.
                </p>
              )}
              <fieldset className="policy__linked" disabled={linkedId !== ''} aria-label={linkedId !== '' ? `Template fields from ${linked?.name ?? 'the linked template'}` : undefined}>
                <SelectField label="Capacity type" hint="Hybrid: spot for stateless workloads, On-Demand for stateful ones." error={errors.template?.capacity_type?.message} {...register('template.capacity_type')}>
                  {CAPACITY_TYPES.map((option) => (
                    <option key={option.value} value={option.value}>
                      {option.label}
                    </option>
                  ))}
                </SelectField>
                <SelectField
                  label="Allocation strategy"
                  hint="Capacity optimized weighs price against interruption risk; lowest price uses risk only to break ties."
                  error={errors.template?.strategy?.message} {...register('template.strategy')}>
                  {STRATEGIES.map((option) => (
                    <option key={option.value} value={option.value}>
                      {option.label}
                    </option>
                  ))}
                </SelectField>
                <TextField
                  label="Allowed instance families"
                  placeholder="m5, c6i, r6g"
                  hint="Comma-separated; empty allows every family."
                  error={errors.template?.allowed_families?.message}
                  {...register('template.allowed_families')}
                />
                <TextField
                  label="Excluded sizes"
                  placeholder="nano, micro, metal"
                  hint="Comma-separated sizes never launched."
                  error={errors.template?.excluded_sizes?.message}
                  {...register('template.excluded_sizes')}
                />
                <fieldset className="field policy__choices" aria-describedby={architecturesError ? `${architecturesLegend}-error` : `${architecturesLegend}-hint`}>
                  <legend id={architecturesLegend} className="field__label">
                    Architectures
                  </legend>
                  <div className="row row--wrap">
                    {ARCHITECTURES.map((option) => (
                      <CheckboxField key={option.value} label={option.label} value={option.value} {...register('template.architectures')} />
                    ))}
                  </div>
                  <span id={`${architecturesLegend}-hint`} className="field__hint">
                    None ticked allows both.
                  </span>
                  {architecturesError && (
                    <span id={`${architecturesLegend}-error`} className="field__error">
                      {architecturesError}
                    </span>
                  )}
              </fieldset>
              <CheckboxField label="Allow burstable instances (t-family)" error={errors.template?.allow_burstable?.message} {...register('template.allow_burstable')} />
              <CheckboxField
                label="Fall back to On-Demand"
                hint="When spot capacity is exhausted, launch On-Demand instead of failing the action."
                error={errors.template?.on_demand_fallback?.message}
                {...register('template.on_demand_fallback')}
              />
              </fieldset>
              <TextField
                label="Risk premium"
                type="number"
                min={0}
                max={10}
                step={0.1}
                inputMode="decimal"
                hint="0–10. How strongly the planner avoids spot capacity that is often interrupted: a spot offer counts as its price × (1 + premium × interruption probability). 0 compares prices only; reported costs are always real prices."
                error={errors.risk_premium?.message}
                {...register('risk_premium', {
                  valueAsNumber: true,
                  validate: (value) => (Number.isFinite(value) && value >= 0 && value <= 10) || 'Enter a number between 0 and 10.',
                })}
              />
          </PolicySection>
          <PolicySection card="consolidation" impact={impacts.cards.consolidation} intro="Moves pods off under-used nodes so they can be removed, in small waves.">
              <SelectField label="Aggressiveness" hint="Nodes below this utilization are consolidated." error={errors.aggressiveness?.message} {...register('aggressiveness')}>
                {AGGRESSIVENESS.map((option) => (
                  <option key={option.value} value={option.value}>
                    {option.label}
                  </option>
                ))}
              </SelectField>
              <SelectField label="Method" error={errors.method?.message} {...register('method')}>
                {METHODS.map((option) => (
                  <option key={option.value} value={option.value}>
                    {option.label}
                  </option>
                ))}
              </SelectField>
              <TextField
                label="Stabilization window (seconds)"
                type="number"
                min={0}
                step={1}
                inputMode="numeric"
                hint="Nodes younger than this are never touched."
                error={errors.stabilization_window_secs?.message}
                {...register('stabilization_window_secs', {
                  valueAsNumber: true,
                  validate: (value) => (Number.isInteger(value) && value >= 0) || 'Enter a whole number of seconds, 0 or more.',
                })}
              />
              <p className="muted policy__intro">A plan changes nodes in waves; these limits keep each wave small.</p>
              <TextField
                label="Max nodes per wave (% of the cluster)"
                type="number"
                min={0}
                max={100}
                step="any"
                inputMode="decimal"
                hint="At most this share of the cluster's nodes is replaced or removed at a time (always at least 1 node)."
                error={errors.disruption_budget?.max_percent?.message}
                {...register('disruption_budget.max_percent', {
                  valueAsNumber: true,
                  validate: (value) => (Number.isFinite(value) && value > 0 && value <= 100) || 'Enter a percentage above 0 and at most 100.',
                })}
              />
              <TextField
                label="Max nodes per wave"
                type="number"
                min={1}
                step={1}
                inputMode="numeric"
                placeholder="No limit"
                hint="Optional cap in nodes, on top of the percentage."
                error={errors.disruption_budget?.max_nodes?.message}
                {...register('disruption_budget.max_nodes', {
                  setValueAs: optionalNumber,
                  validate: (value) => value === null || (Number.isInteger(value) && value >= 1) || 'Enter a whole number of nodes, 1 or more, or leave it empty.',
                })}
              />
              <TextField
                label="Max waves per plan"
                type="number"
                min={1}
                step={1}
                inputMode="numeric"
                placeholder="No limit"
                hint="Optional. Nodes that do not fit in these waves are kept, marked “disruption budget exhausted”."
                error={errors.disruption_budget?.max_waves?.message}
                {...register('disruption_budget.max_waves', {
                  setValueAs: optionalNumber,
                  validate: (value) => value === null || (Number.isInteger(value) && value >= 1) || 'Enter a whole number of waves, 1 or more, or leave it empty.',
                })}
              />
              <CheckboxField
                label="Dry run only"
                hint="Every optimization of this cluster only plans and reports “would execute”."
                error={errors.dry_run?.message}
                {...register('dry_run')}
              />
              <CheckboxField
                label="Maintenance mode"
                hint="Plans are computed, but every action is blocked."
                error={errors.maintenance_mode?.message}
                {...register('maintenance_mode')}
              />
          </PolicySection>
          <PolicySection card="hibernation">
            <HibernationLink clusterId={clusterId} />
          </PolicySection>
        </div>
        <div role="tabpanel" id={`${formId}-panel-workload`} aria-labelledby={`${formId}-tab-workload`} hidden={layer !== 'workload'} className="policy">
          <PolicySection card="rightsizing" impact={impacts.cards.rightsizing} intro="Recommends pod requests from measured usage.">
            <SelectField
              label="Rightsizing mode"
              hint="Off: no recommendations. Recommendations only: a report of new requests; pods are never patched. Automatic apply: Optimize Now patches the requests of Deployments and StatefulSets through the cluster agent (a rolling update); never in a dry run."
              error={errors.rightsize_mode?.message} {...register('rightsize_mode')}>
              {RIGHTSIZE_MODES.map((option) => (
                <option key={option.value} value={option.value}>
                  {option.label}
                </option>
              ))}
            </SelectField>
              <SelectField
                label="Rightsizing percentile"
                hint="Recommended requests follow this percentile of measured usage."
                error={errors.rightsize_percentile?.message}
                {...register('rightsize_percentile')}
              >
                {PERCENTILES.map((p) => (
                  <option key={p.value} value={p.value}>
                    {p.label}
                  </option>
                ))}
              </SelectField>
              <TextField
                label="Rightsizing headroom (%)"
                type="number"
                min={10}
                max={50}
                step={1}
                inputMode="numeric"
                hint="Added on top of the percentile, 10–50 %."
                error={errors.rightsize_headroom?.message}
                {...register('rightsize_headroom', {
                  valueAsNumber: true,
                  validate: (value) => (Number.isFinite(value) && value >= 10 && value <= 50) || 'Enter a percentage between 10 and 50.',
                })}
              />
            <TextField
              label="Minimum saving to recommend (USD/month)"
              type="number"
              min={0}
              max={10000}
              step={1}
              inputMode="decimal"
              hint="Reductions saving less than this are not worth restarting pods for; increases are always recommended."
              error={errors.rightsize_min_monthly_savings?.message}
              {...register('rightsize_min_monthly_savings', {
                valueAsNumber: true,
                validate: (value) => (Number.isFinite(value) && value >= 0 && value <= 10000) || 'Enter an amount between 0 and 10000.',
              })}
            />
          </PolicySection>
          <PolicySection card="affinity" impact={impacts.cards.affinity} wide intro="Where workloads may run: spot, On-Demand, or either.">
            <div className="field">
              <span className="field__label" id={`${formId}-affinity`}>
                Spot preference per namespace
              </span>
              {affinity.fields.length === 0 ? (
                <span className="field__hint">No rules: every pod prefers spot and falls back to On-Demand. A pod&apos;s own capacity-type node selector always wins.</span>
              ) : (
                <ol className="od-rules" aria-labelledby={`${formId}-affinity`}>
                  {affinity.fields.map((field, index) => (
                    <li key={field.id}>
                      <fieldset className="od-rule" aria-label={`Spot rule ${index + 1}`}>
                        <TextField
                          label="Namespace"
                          placeholder="ci"
                          error={errors.spot_affinity?.[index]?.namespace?.message}
                          {...register(`spot_affinity.${index}.namespace`, {
                            validate: (value) => /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(value.trim()) || 'Enter a namespace name (lowercase letters, digits, -).',
                          })}
                        />
                        <SelectField label="Spot preference" {...register(`spot_affinity.${index}.mode`)}>
                          {SPOT_PREFERENCES.map((option) => (
                            <option key={option.value} value={option.value}>
                              {option.label}
                            </option>
                          ))}
                        </SelectField>
                        {canEdit && (
                          <Button variant="ghost" size="sm" className="od-rule__remove" onClick={() => affinity.remove(index)} aria-label={`Remove spot rule ${index + 1}`}>
                            Remove
                          </Button>
                        )}
                      </fieldset>
                    </li>
                  ))}
                </ol>
              )}
              {canEdit && (
                <div className="row">
                  <Button size="sm" onClick={() => affinity.append({ namespace: '', mode: 'force' })}>
                    Add spot rule
                  </Button>
                </div>
              )}
            </div>
            <CheckboxField
              label="Enforce multi-AZ high availability"
              hint="Spread each workload's pods (same namespace and owner) over availability zones: new nodes for them are chosen so no zone holds more than one pod more than another, and consolidation never moves them to another zone."
              error={errors.multi_az_spread?.message}
              {...register('multi_az_spread')}
            />
            <h4 className="policy__subtitle">On-demand minimums</h4>
              <p className="muted policy__intro">
                Keep part of a workload on On-Demand capacity so a spot interruption cannot take all of it down. A rule applies to the pods in its namespace (any
                namespace when empty) that carry every listed label (all pods when empty). The share is of the pods the rule matches; when both a share and a replica count are set, the larger wins.
              </p>
              {errors.root?.rules && (
                <span className="field__error" role="alert">
                  {errors.root.rules.message}
                </span>
              )}
              {rules.fields.length === 0 ? (
                <p className="muted">No rules: no workload is required to keep pods on On-Demand.</p>
              ) : (
                <ol className="od-rules" aria-label="On-demand minimums">
                  {rules.fields.map((field, index) => {
                    const rowErrors = errors.on_demand_minimums?.[index];
                    return (
                      <li key={field.id}>
                        <fieldset className="od-rule">
                          <legend className="od-rule__legend">Rule {index + 1}</legend>
                          <TextField label="Namespace" placeholder="Any namespace" error={rowErrors?.namespace?.message} {...register(`on_demand_minimums.${index}.namespace`)} />
                          <div className="od-rule__labels">
                            <TextField
                              label="Pod labels"
                              placeholder="app=api, tier=web"
                              hint="key=value, comma-separated; any labels when empty"
                              error={rowErrors?.selector?.message}
                              {...register(`on_demand_minimums.${index}.selector`, {
                                validate: (value) => parseSelector(value) !== null || 'Write labels as key=value, separated by commas.',
                              })}
                            />
                          </div>
                          <TextField
                            label="Minimum On-Demand share (%)"
                            type="number"
                            min={0}
                            max={100}
                            step="any"
                            inputMode="decimal"
                            error={rowErrors?.percent?.message}
                            {...register(`on_demand_minimums.${index}.percent`, {
                              setValueAs: optionalNumber,
                              validate: (value, form) => {
                                if (value === null) return form.on_demand_minimums[index]?.replicas !== null || 'Set a percentage or a number of replicas.';
                                return (Number.isFinite(value) && value >= 0 && value <= 100) || 'Enter a percentage between 0 and 100.';
                              },
                            })}
                          />
                          <TextField
                            label="Minimum On-Demand replicas"
                            type="number"
                            min={0}
                            step={1}
                            inputMode="numeric"
                            error={rowErrors?.replicas?.message}
                            {...register(`on_demand_minimums.${index}.replicas`, {
                              setValueAs: optionalNumber,
                              deps: [`on_demand_minimums.${index}.percent`],
                              validate: (value) => value === null || (Number.isInteger(value) && value >= 0) || 'Enter a whole number of replicas, 0 or more.',
                            })}
                          />
                          {canEdit && (
                            <Button variant="ghost" size="sm" className="od-rule__remove" onClick={() => rules.remove(index)} aria-label={`Remove rule ${index + 1}`}>
                              Remove
                            </Button>
                          )}
                        </fieldset>
                      </li>
                    );
                  })}
                </ol>
              )}
              {canEdit && (
                <div className="row">
                  <Button size="sm" onClick={() => rules.append({ ...EMPTY_ROW })}>
                    Add rule
                  </Button>
                </div>
              )}
          </PolicySection>
          <PolicySection card="governance" impact={impacts.cards.governance} intro="Resources the optimizer never touches: they are marked unmanaged, their cost still counts.">
              <TextField
                label="Excluded namespaces"
                placeholder="kube-system, payments"
                hint="Comma-separated; pods in these namespaces are never moved."
                error={errors.excluded_namespaces?.message}
                {...register('excluded_namespaces')}
              />
            <TextField
              label="Excluded pod labels"
              placeholder="karpenter.sh/do-not-evict=true, app=legacy-db"
              hint="key=value, comma-separated; a pod with any of them is never moved and its node is unmanaged."
              error={errors.excluded_labels?.message}
              {...register('excluded_labels', { validate: (value) => parseLabelPairs(value) !== null || 'Write labels as key=value, separated by commas.' })}
            />
          </PolicySection>
        </div>
      </fieldset>
      {impact.data && <ImpactSummary impact={impact.data} />}
      {canEdit && (
        <div className={isDirty ? 'policy-savebar policy-savebar--dirty' : 'policy-savebar'} role="region" aria-label="Policy changes">
          <span className="policy-savebar__status" role="status" data-testid="policy-unsaved">
            {isDirty ? `Unsaved changes in ${dirtyCards.length === 0 ? 'the policy' : dirtyCards.map((card) => card.title).join(', ')}` : 'No unsaved changes'}
          </span>
          {isDirty && <ImpactBadge label="All changes" impact={impacts.total} />}
          <span className="policy-savebar__actions">
            <Button variant="ghost" loading={impact.isPending} disabled={isSubmitting} onClick={() => void onPreview()}>
              Preview impact
            </Button>
            <Button variant="ghost" disabled={!isDirty || isSubmitting} onClick={() => reset(toForm(policy))}>
              Discard changes
            </Button>
            <Button variant="primary" type="submit" loading={isSubmitting} disabled={!isDirty}>
              Save policy
            </Button>
          </span>
        </div>
      )}
    </form>
  );
}

/** One card of the policy page, with the planner's estimate of what its unsaved changes do. */
function PolicySection({ card, impact, wide, intro, children }: { card: CardId; impact?: CardImpact; wide?: boolean; intro?: string; children: ReactNode }) {
  const def = POLICY_CARDS.find((c) => c.id === card);
  const id = useId();
  return (
    <section className={wide ? 'policy__group policy__group--wide policy-card' : 'policy__group policy-card'} aria-labelledby={id} data-card={card}>
      <div className="policy-card__head">
        <h3 className="policy__title" id={id}>
          {def?.title}
        </h3>
        {impact && <ImpactBadge label={def?.title ?? card} impact={impact} />}
      </div>
      {intro && <p className="muted policy__intro">{intro}</p>}
      {children}
    </section>
  );
}

/** `−$120.00/mo`: the monthly node cost difference the planner computed for a change. */
export function ImpactBadge({ label, impact }: { label: string; impact?: CardImpact }) {
  if (impact === undefined) return null;
  let text: string;
  let tone: 'neutral' | 'success' | 'warning' | 'danger' = 'neutral';
  if (impact.error !== undefined) text = 'Impact unavailable';
  else if (impact.difference === undefined) text = 'Estimating…';
  else if (impact.difference < -0.005) {
    text = `−${formatUsdCents(-impact.difference)}/mo`;
    tone = 'success';
  } else if (impact.difference > 0.005) {
    text = `+${formatUsdCents(impact.difference)}/mo`;
    tone = 'warning';
  } else text = 'No cost change';
  return (
    <span className="impact-badge" aria-label={`Estimated impact of ${label}: ${text}`} title={impact.error !== undefined ? errorMessage(impact.error) : 'Planned on the cluster as it is now'} data-testid="impact-badge">
      <Badge tone={tone}>{text}</Badge>
    </span>
  );
}

/** The hibernation card links to the cluster's schedule (kept on its own page). */
function HibernationLink({ clusterId }: { clusterId: string }) {
  const schedule = useHibernationSchedule(clusterId);
  const awake = schedule.data ? schedule.data.slots.filter(Boolean).length : undefined;
  return (
    <div className="stack">
      <p className="muted">Scales the cluster&apos;s node groups to zero outside working hours and restores them exactly.</p>
      {schedule.data && (
        <p>
          {schedule.data.enabled ? `On: awake ${awake} of 168 hours a week (${schedule.data.timezone})` : 'Off: the cluster runs around the clock'}
          {schedule.data.manual ? ` · manual override: ${schedule.data.manual.state}` : ''}
        </p>
      )}
      <Link to={`${HIBERNATION_PATH}?cluster=${encodeURIComponent(clusterId)}`}>Edit the hibernation schedule</Link>
    </div>
  );
}

/** What the planner says this policy would do to the cluster now. */
function ImpactSummary({ impact }: { impact: PolicyImpact }) {
  const saves = impact.monthly_difference < -0.005;
  const costs = impact.monthly_difference > 0.005;
  return (
    <div className="callout" role="status" aria-label="Estimated impact">
      <strong className="callout__title">
        {saves
          ? `Saves ${formatUsdCents(-impact.monthly_difference)} per month`
          : costs
            ? `Costs ${formatUsdCents(impact.monthly_difference)} more per month`
            : 'No change in cost'}
      </strong>
      <span>
        {formatUsdCents(impact.current_monthly)}/month now → {formatUsdCents(impact.planned_monthly)}/month with this policy.{' '}
        {impact.nodes_changed} of {impact.nodes_changed + impact.nodes_kept} node{impact.nodes_changed + impact.nodes_kept === 1 ? '' : 's'} change
        {impact.nodes_changed > 0 ? ` in ${impact.waves} wave${impact.waves === 1 ? '' : 's'}, moving ${impact.pods_moved} pod${impact.pods_moved === 1 ? '' : 's'}` : ''}.
      </span>
      {impact.warnings.length > 0 && <span>{impact.warnings.join(' ')}</span>}
      <span className="muted">Planned on the cluster as it is now; nothing is saved or changed until you save and run Optimize Now.</span>
    </div>
  );
}

/**
 * The templates a policy can link: the organization's, plus the linked one while the list
 * has not loaded (or failed), so the selector never shows a linked policy as unlinked.
 */
function linkableTemplates(templates: Template[] | undefined, policy: ClusterPolicy): Pick<Template, 'id' | 'name' | 'is_default'>[] {
  const list: Pick<Template, 'id' | 'name' | 'is_default'>[] = templates ?? [];
  const id = policy.template_id;
  if (id == null || list.some((template) => template.id === id)) return list;
  return [...list, { id, name: policy.template_name ?? 'Linked template', is_default: false }];
}
