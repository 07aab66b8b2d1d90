import { useEffect, useId, useMemo, useRef, useState, type FormEvent } from 'react';
import { Controller, useFieldArray, useForm, type FieldPath } from 'react-hook-form';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { ApiError, errorMessage } from '../../api/errors';
import type { Template, TemplateSpecInput } from '../../api/types';
import { canManageOrg, useMe } from '../../auth/MeContext';
import { Button, Card, CheckboxField, EmptyState, ErrorState, SelectField, SkeletonRows, TextField, useToast } from '../../components';
import { PageHeader } from '../../layout/PageHeader';
import { ARCHITECTURES, CAPACITY_TYPES, STRATEGIES, parseSelector } from '../clusters/policy';
import { useCreateTemplate, useTemplate, useTemplateEstimate, useUpdateTemplate } from './api';
import { EstimatePanel } from './EstimatePanel';
import { FamilyInput } from './FamilyInput';
import { SecurityGroupPicker } from './SecurityGroupPicker';
import {
  DISK_GIB,
  EMPTY_TAINT,
  IOPS_RANGE,
  NEW_TEMPLATE,
  STEPS,
  TAINT_EFFECTS,
  TEMPLATES_PATH,
  VOLUME_TYPES,
  splitList,
  stepOfField,
  templateConflicts,
  toForm,
  toSpec,
  type TemplateForm,
} from './spec';

/** The inputs each step validates before the next one opens. */
const STEP_FIELDS: FieldPath<TemplateForm>[][] = [
  ['name', 'description'],
  ['families', 'architectures', 'excluded_sizes', 'allow_burstable'],
  ['capacity_type', 'strategy', 'on_demand_fallback'],
  ['storage.volume_type', 'storage.size_gib', 'storage.iops', 'security_groups', 'labels', 'taints'],
];
const LAST = STEPS.length - 1;

const optionalNumber = (value: unknown): number | null => (value === '' || value === null || value === undefined ? null : Number(value));
const SG = /^sg-([0-9a-f]{8}|[0-9a-f]{17})$/i;

/** `/templates/new` and `/templates/:id`: the four-step template wizard, read-only for viewers. */
export function TemplateWizardPage() {
  const { id } = useParams();
  const canEdit = canManageOrg(useMe());
  const template = useTemplate(id);

  const back = (
    <Link to={TEMPLATES_PATH} className="back-link">
      ← Node templates
    </Link>
  );
  if (id === undefined && !canEdit) {
    return (
      <>
        {back}
        <PageHeader title="Create node template" />
        <Card>
          <EmptyState
            title="Only owners and admins can create templates"
            description="Ask an owner or admin of your organization to create this template."
            action={
              <Link to={TEMPLATES_PATH} className="btn btn--secondary">
                Back to templates
              </Link>
            }
          />
        </Card>
      </>
    );
  }
  if (id !== undefined && !template.isSuccess) {
    return (
      <>
        {back}
        <Card>
          {template.isPending && <SkeletonRows rows={5} label="Loading template" />}
          {template.isError && (
            <ErrorState
              error={template.error}
              title={template.error instanceof ApiError && template.error.status === 404 ? 'Template not found' : 'Could not load the template'}
              onRetry={() => void template.refetch()}
            />
          )}
        </Card>
      </>
    );
  }
  return (
    <>
      {back}
      <TemplateWizard key={template.data?.id ?? 'new'} template={template.data} canEdit={canEdit} />
    </>
  );
}

function TemplateWizard({ template, canEdit }: { template: Template | undefined; canEdit: boolean }) {
  const editing = template !== undefined;
  const navigate = useNavigate();
  const toast = useToast();
  const create = useCreateTemplate();
  const update = useUpdateTemplate(template?.id ?? '');
  const [step, setStep] = useState(0);
  // Steps already reached can be reopened from the indicator; editing reaches them all.
  const [reached, setReached] = useState(editing ? LAST : 0);
  const [familyDraft, setFamilyDraft] = useState('');
  const stepRef = useMoveFocusToHeading(step);
  const architecturesId = useId();

  const {
    register,
    control,
    handleSubmit,
    trigger,
    watch,
    setError,
    setFocus,
    formState: { errors, isSubmitting },
  } = useForm<TemplateForm>({ defaultValues: template ? toForm(template) : NEW_TEMPLATE, mode: 'onTouched' });
  const taints = useFieldArray({ control, name: 'taints' });
  const values = watch();

  // Only the fields that decide which pools a template admits go to the estimate: disk,
  // labels or taints do not change prices, and a half-typed label must not blank the panel.
  const pricing: TemplateSpecInput = useMemo(() => {
    const { families, architectures, excluded_sizes, allow_burstable, capacity_type, strategy, on_demand_fallback } = toSpec(values);
    return { families, architectures, excluded_sizes, allow_burstable, capacity_type, strategy, on_demand_fallback };
  }, [values]);
  const estimate = useTemplateEstimate(pricing);
  const conflicts = templateConflicts({ families: [...values.families, ...splitList(familyDraft)], architectures: values.architectures, allow_burstable: values.allow_burstable });

  // The estimate validates the draft as the user goes: its 422 shows under the field it names.
  const estimateError = estimate.error instanceof ApiError && estimate.error.status === 422 ? estimate.error : undefined;
  const fieldError = (path: FieldPath<TemplateForm>, own: string | undefined) =>
    own ?? (estimateError && stepOfField(estimateError.field)?.path === path ? estimateError.message : undefined);

  const goTo = async (target: number) => {
    if (target > step && !(await trigger(STEP_FIELDS[step]))) return;
    setStep(target);
    setReached((r) => Math.max(r, target));
  };

  /** Where the first invalid field is: open its step so the message is seen. */
  const showInvalid = (invalid: Partial<Record<string, unknown>>) => {
    const first = STEP_FIELDS.findIndex((fields) => fields.some((field) => invalid[field.split('.')[0] as string] !== undefined));
    if (first >= 0) setStep(first);
  };

  const save = async (form: TemplateForm) => {
    const name = form.name.trim();
    const description = form.description.trim();
    try {
      if (template) {
        await update.mutateAsync({ name, description, spec: toSpec(form) });
        toast.success(`${name} saved.`);
      } else {
        await create.mutateAsync({ name, ...(description !== '' ? { description } : {}), spec: toSpec(form) });
        toast.success(`Template ${name} created.`);
      }
      navigate(TEMPLATES_PATH);
    } catch (error) {
      const place = error instanceof ApiError ? stepOfField(error.field) : undefined;
      if (place !== undefined) {
        const path = place.path as FieldPath<TemplateForm>;
        setStep(STEPS.findIndex((s) => s.key === place.step));
        setError(path, { type: 'server', message: errorMessage(error) });
        // The step re-renders visible first; then the field can take focus.
        setTimeout(() => {
          try {
            setFocus(path);
          } catch {
            // Tag and row editors have no single input to focus.
          }
        }, 0);
      } else {
        setError('root.server', { type: 'server', message: errorMessage(error) });
      }
    }
  };

  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    if (step < LAST) {
      event.preventDefault();
      void goTo(step + 1);
      return;
    }
    if (!canEdit) {
      event.preventDefault();
      return;
    }
    void handleSubmit(save, showInvalid)(event);
  };

  const iopsRange = IOPS_RANGE[values.storage.volume_type];
  const title = editing ? `Edit ${template.name}` : 'Create node template';
  const architecturesError = fieldError('architectures', errors.architectures?.message);
  return (
    <div className="template-wizard">
      <PageHeader title={title} subtitle="Which instances new nodes may use, how they are bought, and how each node is set up." />
      <ol className="wizard__stages" aria-label="Template steps">
        {STEPS.map((s, index) => (
          <li
            key={s.key}
            className={index < step ? 'wizard__stage wizard__stage--done' : 'wizard__stage'}
            aria-current={index === step ? 'step' : undefined}
          >
            {index <= reached && index !== step ? (
              <button type="button" className="wizard__stage-link" onClick={() => void goTo(index)}>
                <span className="wizard__stage-number" aria-hidden="true">
                  {index + 1}
                </span>
                {s.label}
              </button>
            ) : (
              <>
                <span className="wizard__stage-number" aria-hidden="true">
                  {index + 1}
                </span>
                {s.label}
              </>
            )}
          </li>
        ))}
      </ol>
      <div className="template-wizard__body">
        <Card>
          <form className="stack" onSubmit={onSubmit} noValidate aria-label={title}>
            {!canEdit && <p className="muted">Only owners and admins can change templates.</p>}
            {errors.root?.server && (
              <div className="form-alert" role="alert">
                {errors.root.server.message}
              </div>
            )}
            <fieldset className="template-steps" disabled={!canEdit}>
              <div ref={stepRef}>
                <section className="stack" hidden={step !== 0}>
                  <h2>Name and description</h2>
                  <TextField
                    label="Name"
                    placeholder="general-purpose-spot"
                    hint="Unique in your organization; shown when a cluster links the template."
                    maxLength={64}
                    error={errors.name?.message}
                    {...register('name', {
                      validate: (value) => (value.trim().length >= 1 && value.trim().length <= 64) || 'Enter a name of 1 to 64 characters.',
                    })}
                  />
                  <TextField
                    label="Description (optional)"
                    placeholder="Stateless web and batch workloads"
                    error={errors.description?.message}
                    {...register('description')}
                  />
                </section>

                <section className="stack" hidden={step !== 1}>
                  <h2>Instances</h2>
                  <Controller
                    control={control}
                    name="families"
                    rules={{ validate: (value) => value.length > 0 || 'Choose at least one instance family.' }}
                    render={({ field }) => (
                      <FamilyInput
                        ref={field.ref}
                        label="Instance families"
                        hint="Families new nodes may use: m for general purpose, c for compute, r for memory; a g after the generation (m7g, c7g) means Graviton (arm64)."
                        value={field.value}
                        onChange={field.onChange}
                        onBlur={field.onBlur}
                        onDraftChange={setFamilyDraft}
                        error={fieldError('families', errors.families?.message)}
                        disabled={!canEdit}
                      />
                    )}
                  />
                  <fieldset className="field policy__choices" aria-describedby={architecturesError ? `${architecturesId}-error` : `${architecturesId}-hint`}>
                    <legend id={architecturesId} className="field__label">
                      Architectures
                    </legend>
                    <div className="row row--wrap">
                      {ARCHITECTURES.map((option) => (
                        <CheckboxField key={option.value} label={option.label} value={option.value} {...register('architectures')} />
                      ))}
                    </div>
                    <span id={`${architecturesId}-hint`} className="field__hint">
                      None ticked: whatever the families offer.
                    </span>
                    {architecturesError && (
                      <span id={`${architecturesId}-error`} className="field__error">
                        {architecturesError}
                      </span>
                    )}
                  </fieldset>
                  {conflicts.length > 0 && (
                    <div className="callout callout--warning" role="status" aria-label="Conflicts">
                      {conflicts.map((conflict) => (
                        <span key={conflict}>{conflict}</span>
                      ))}
                    </div>
                  )}
                  <TextField
                    label="Excluded sizes"
                    placeholder="nano, micro, metal"
                    hint="Comma-separated sizes never launched."
                    error={fieldError('excluded_sizes', errors.excluded_sizes?.message)}
                    {...register('excluded_sizes')}
                  />
                  <CheckboxField
                    label="Allow burstable instances (t2, t3, t4g)"
                    hint="They run on CPU credits and slow down when the credits run out; production nodes usually leave them out."
                    error={fieldError('allow_burstable', errors.allow_burstable?.message)}
                    {...register('allow_burstable')}
                  />
                </section>

                <section className="stack" hidden={step !== 2}>
                  <h2>Purchasing</h2>
                  <SelectField
                    label="Capacity type"
                    hint="Hybrid: spot for stateless workloads, On-Demand for stateful ones."
                    error={errors.capacity_type?.message}
                    {...register('capacity_type')}
                  >
                    {CAPACITY_TYPES.map((option) => (
                      <option key={option.value} value={option.value}>
                        {option.label}
                      </option>
                    ))}
                  </SelectField>
                  <SelectField
                    label="Spot strategy"
                    hint={
                      values.capacity_type === 'on_demand'
                        ? 'Not used: this template buys On-Demand only.'
                        : 'Capacity optimized weighs price against interruption risk; lowest price uses risk only to break ties.'
                    }
                    disabled={values.capacity_type === 'on_demand'}
                    error={errors.strategy?.message}
                    {...register('strategy')}
                  >
                    {STRATEGIES.map((option) => (
                      <option key={option.value} value={option.value}>
                        {option.label}
                      </option>
                    ))}
                  </SelectField>
                  <CheckboxField
                    label="Fall back to On-Demand"
                    hint="When no spot pool fits or spot capacity is exhausted, launch On-Demand instead of failing the action."
                    disabled={values.capacity_type === 'on_demand'}
                    error={errors.on_demand_fallback?.message}
                    {...register('on_demand_fallback')}
                  />
                </section>

                <section className="stack" hidden={step !== 3}>
                  <h2>Node settings</h2>
                  <h3 className="policy__title">Root volume</h3>
                  <div className="form-grid form-grid--3">
                    <SelectField
                      label="Volume type"
                      hint="gp3 suits most nodes; io1 and io2 provision IOPS."
                      error={errors.storage?.volume_type?.message} {...register('storage.volume_type', { deps: ['storage.iops'] })}>
                      {VOLUME_TYPES.map((option) => (
                        <option key={option.value} value={option.value}>
                          {option.label}
                        </option>
                      ))}
                    </SelectField>
                    <TextField
                      label="Size (GiB)"
                      type="number"
                      min={DISK_GIB.min}
                      max={DISK_GIB.max}
                      step={1}
                      inputMode="numeric"
                      hint={`${DISK_GIB.min}–${DISK_GIB.max.toLocaleString('en-US')} GiB`}
                      error={errors.storage?.size_gib?.message}
                      {...register('storage.size_gib', {
                        valueAsNumber: true,
                        validate: (value) =>
                          (Number.isInteger(value) && value >= DISK_GIB.min && value <= DISK_GIB.max) ||
                          `Enter a whole number of GiB between ${DISK_GIB.min} and ${DISK_GIB.max.toLocaleString('en-US')}.`,
                      })}
                    />
                    {iopsRange !== null ? (
                      <TextField
                        label={values.storage.volume_type === 'gp3' ? 'IOPS (optional)' : 'IOPS'}
                        type="number"
                        min={iopsRange.min}
                        max={iopsRange.max}
                        step={1}
                        inputMode="numeric"
                        placeholder={values.storage.volume_type === 'gp3' ? '3000 (baseline)' : undefined}
                        hint={`${iopsRange.min.toLocaleString('en-US')}–${iopsRange.max.toLocaleString('en-US')} for ${values.storage.volume_type}`}
                        error={errors.storage?.iops?.message}
                        {...register('storage.iops', {
                          setValueAs: optionalNumber,
                          validate: (value, form) => {
                            const type = form.storage.volume_type;
                            const range = IOPS_RANGE[type];
                            if (range === null) return true;
                            if (value === null) return !type.startsWith('io') || `${type} volumes need provisioned IOPS.`;
                            return (
                              (Number.isInteger(value) && value >= range.min && value <= range.max) ||
                              `Enter ${range.min.toLocaleString('en-US')}–${range.max.toLocaleString('en-US')} IOPS for ${type}.`
                            );
                          },
                        })}
                      />
                    ) : (
                      <div className="field">
                        <span className="field__label">IOPS</span>
                        <span className="field__hint template-iops-note">gp2 scales IOPS with size (3 per GiB); there is nothing to set.</span>
                      </div>
                    )}
                  </div>
                  <Controller
                    control={control}
                    name="security_groups"
                    rules={{
                      validate: (value) => {
                        const wrong = splitList(value).find((group) => !SG.test(group));
                        return wrong === undefined || `${wrong} is not a security group id (sg- and 8 or 17 hex digits).`;
                      },
                    }}
                    render={({ field }) => (
                      <SecurityGroupPicker
                        ref={field.ref}
                        value={field.value}
                        onChange={field.onChange}
                        onBlur={field.onBlur}
                        error={fieldError('security_groups', errors.security_groups?.message)}
                        disabled={!canEdit}
                      />
                    )}
                  />
                  <TextField
                    label="Node labels"
                    placeholder="team=platform, workload=stateless"
                    hint="key=value, comma-separated; put on every node launched from this template."
                    error={errors.labels?.message}
                    {...register('labels', { validate: (value) => parseSelector(value) !== null || 'Write labels as key=value, separated by commas.' })}
                  />
                  <div className="field">
                    <span className="field__label" id={`${architecturesId}-taints`}>
                      Taints
                    </span>
                    {taints.fields.length === 0 ? (
                      <span className="field__hint">No taints: any pod can schedule on these nodes.</span>
                    ) : (
                      <ol className="taints" aria-labelledby={`${architecturesId}-taints`}>
                        {taints.fields.map((field, index) => (
                          <li key={field.id} className="taint">
                            <TextField
                              label={`Taint ${index + 1} key`}
                              placeholder="dedicated"
                              error={errors.taints?.[index]?.key?.message}
                              {...register(`taints.${index}.key`, { validate: (value) => value.trim() !== '' || 'Enter a key, or remove the taint.' })}
                            />
                            <TextField label={`Taint ${index + 1} value`} placeholder="batch (optional)" {...register(`taints.${index}.value`)} />
                            <SelectField label={`Taint ${index + 1} effect`} {...register(`taints.${index}.effect`)}>
                              {TAINT_EFFECTS.map((effect) => (
                                <option key={effect} value={effect}>
                                  {effect}
                                </option>
                              ))}
                            </SelectField>
                            {canEdit && (
                              <Button variant="ghost" size="sm" className="taint__remove" onClick={() => taints.remove(index)} aria-label={`Remove taint ${index + 1}`}>
                                Remove
                              </Button>
                            )}
                          </li>
                        ))}
                      </ol>
                    )}
                    {errors.taints?.message && <span className="field__error">{errors.taints.message}</span>}
                    {errors.taints?.root?.message && <span className="field__error">{errors.taints.root.message}</span>}
                    {canEdit && (
                      <div className="row">
                        <Button size="sm" onClick={() => taints.append({ ...EMPTY_TAINT })}>
                          Add taint
                        </Button>
                      </div>
                    )}
                  </div>
                </section>
              </div>
            </fieldset>
            <div className="row row--between template-wizard__nav">
              {step > 0 ? (
                <Button variant="ghost" onClick={() => setStep(step - 1)}>
                  Back
                </Button>
              ) : (
                <Link to={TEMPLATES_PATH} className="btn btn--ghost">
                  Cancel
                </Link>
              )}
              {step < LAST ? (
                <Button variant="primary" type="submit">
                  Next: {STEPS[step + 1]?.label}
                </Button>
              ) : (
                canEdit && (
                  <Button variant="primary" type="submit" loading={isSubmitting}>
                    {editing ? 'Save changes' : 'Create template'}
                  </Button>
                )
              )}
            </div>
          </form>
        </Card>
        <EstimatePanel
          empty={values.families.length === 0}
          data={estimate.data}
          error={estimate.error}
          loading={estimate.isPending}
          refreshing={estimate.isFetching && estimate.data !== undefined}
        />
      </div>
    </div>
  );
}

/** After each step change, moves focus to the new step's heading so screen readers announce it. */
function useMoveFocusToHeading(step: number) {
  const ref = useRef<HTMLDivElement>(null);
  const previous = useRef(step);
  useEffect(() => {
    if (previous.current === step) return;
    previous.current = step;
    const heading = ref.current?.querySelectorAll<HTMLElement>('section > h2')[step];
    heading?.setAttribute('tabindex', '-1');
    heading?.focus();
  }, [step]);
  return ref;
}
