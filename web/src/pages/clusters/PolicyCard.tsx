import { useEffect, useId } from 'react';
import { useForm, type FieldPath } from 'react-hook-form';
import { ApiError, errorMessage } from '../../api/errors';
import { Button, Card, CheckboxField, ErrorState, SelectField, SkeletonRows, TextField, useToast } from '../../components';
import {
  AGGRESSIVENESS,
  ARCHITECTURES,
  CAPACITY_TYPES,
  METHODS,
  STRATEGIES,
  useClusterPolicy,
  useSaveClusterPolicy,
  type Aggressiveness,
  type AllocationStrategy,
  type Architecture,
  type CapacityType,
  type ClusterPolicy,
  type ConsolidationMethod,
  type RightsizePercentile,
  PERCENTILES,
} from './policy';

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
}

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
];

const joinList = (values: string[]) => values.join(', ');
const splitList = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((value) => value.trim())
    .filter(Boolean);

function toForm(policy: ClusterPolicy): PolicyForm {
  return {
    ...policy,
    rightsize_headroom: Math.round((policy.rightsize_headroom ?? 0.2) * 100),
    excluded_namespaces: joinList(policy.excluded_namespaces),
    template: {
      ...policy.template,
      allowed_families: joinList(policy.template.allowed_families),
      excluded_sizes: joinList(policy.template.excluded_sizes),
      // A lone checkbox would register as a boolean: keep arrays arrays.
      architectures: [...policy.template.architectures],
    },
  };
}

function fromForm(form: PolicyForm): ClusterPolicy {
  return {
    ...form,
    excluded_namespaces: splitList(form.excluded_namespaces),
    stabilization_window_secs: Number(form.stabilization_window_secs),
    rightsize_headroom: Number(form.rightsize_headroom) / 100,
    template: {
      ...form.template,
      allowed_families: splitList(form.template.allowed_families),
      excluded_sizes: splitList(form.template.excluded_sizes),
      architectures: Array.isArray(form.template.architectures) ? form.template.architectures : [],
    },
  };
}

/** The server names nested fields like `template.architectures[0]`: map them to this form's inputs. */
function formField(field: string | undefined): FieldPath<PolicyForm> | undefined {
  const path = field?.replace(/\[\d+\]/g, '');
  return FIELDS.find((name) => name === path);
}

/** The cluster's optimization policy: editable by owners and admins, read-only for viewers. */
export function PolicyCard({ clusterId, canEdit }: { clusterId: string; canEdit: boolean }) {
  const policy = useClusterPolicy(clusterId);
  return (
    <Card title="Optimization policy">
      {policy.isPending && <SkeletonRows rows={5} label="Loading policy" />}
      {policy.isError && <ErrorState error={policy.error} title="Could not load the policy" onRetry={() => void policy.refetch()} />}
      {policy.isSuccess && <PolicyEditor clusterId={clusterId} policy={policy.data} canEdit={canEdit} />}
    </Card>
  );
}

function PolicyEditor({ clusterId, policy, canEdit }: { clusterId: string; policy: ClusterPolicy; canEdit: boolean }) {
  const save = useSaveClusterPolicy(clusterId);
  const toast = useToast();
  const formId = useId();
  const architecturesLegend = useId();
  const {
    register,
    handleSubmit,
    reset,
    setError,
    formState: { errors, isDirty, isSubmitting },
  } = useForm<PolicyForm>({ defaultValues: toForm(policy) });

  // A saved (or refetched) policy becomes the new baseline.
  useEffect(() => reset(toForm(policy)), [policy, reset]);

  const onSubmit = handleSubmit(async (values) => {
    try {
      await save.mutateAsync(fromForm(values));
      toast.success('Optimization policy saved.');
    } catch (error) {
      const field = error instanceof ApiError ? formField(error.field) : undefined;
      if (field !== undefined) setError(field, { type: 'server', message: errorMessage(error) }, { shouldFocus: true });
      else setError('root.server', { type: 'server', message: errorMessage(error) });
    }
  });

  const architecturesError = errors.template?.architectures?.message;
  return (
    <form id={formId} className="stack" onSubmit={onSubmit} noValidate aria-label="Optimization policy">
      {!canEdit && <p className="muted">Only owners and admins can change the policy.</p>}
      {errors.root?.server && (
        <div className="form-alert" role="alert">
          {errors.root.server.message}
        </div>
      )}
      <fieldset className="policy" disabled={!canEdit}>
        <div className="policy__group">
          <h3 className="policy__title">Consolidation</h3>
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
            label="Excluded namespaces"
            placeholder="kube-system, payments"
            hint="Comma-separated; pods in these namespaces are never moved."
            error={errors.excluded_namespaces?.message}
            {...register('excluded_namespaces')}
          />
        </div>

        <div className="policy__group">
          <h3 className="policy__title">Node template</h3>
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
        </div>

        <div className="policy__group">
          <h3 className="policy__title">Safety</h3>
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
        </div>
      </fieldset>
      {canEdit && (
        <div className="row row--end">
          <Button variant="ghost" disabled={!isDirty || isSubmitting} onClick={() => reset(toForm(policy))}>
            Discard changes
          </Button>
          <Button variant="primary" type="submit" loading={isSubmitting} disabled={!isDirty}>
            Save policy
          </Button>
        </div>
      )}
    </form>
  );
}
