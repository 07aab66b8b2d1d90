import { forwardRef, useId, type InputHTMLAttributes, type ReactNode, type SelectHTMLAttributes } from 'react';

export interface ControlProps {
  id: string;
  'aria-invalid': boolean;
  'aria-describedby'?: string;
}

interface FieldProps {
  label: string;
  hint?: ReactNode;
  error?: string;
  children: (control: ControlProps) => ReactNode;
}

/** Label, hint and error text wired to one control through id / aria-describedby. */
export function Field({ label, hint, error, children }: FieldProps) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = [hint !== undefined && hintId, error && errorId].filter(Boolean).join(' ') || undefined;
  return (
    <div className="field">
      <label className="field__label" htmlFor={id}>
        {label}
      </label>
      {children({ id, 'aria-invalid': Boolean(error), 'aria-describedby': describedBy })}
      {hint !== undefined && (
        <span id={hintId} className="field__hint">
          {hint}
        </span>
      )}
      {error && (
        <span id={errorId} className="field__error">
          {error}
        </span>
      )}
    </div>
  );
}

type FieldChrome = { label: string; hint?: ReactNode; error?: string };

export const TextField = forwardRef<HTMLInputElement, FieldChrome & InputHTMLAttributes<HTMLInputElement>>(
  function TextField({ label, hint, error, ...input }, ref) {
    return (
      <Field label={label} hint={hint} error={error}>
        {(control) => <input ref={ref} className="input" {...input} {...control} />}
      </Field>
    );
  },
);

export const SelectField = forwardRef<HTMLSelectElement, FieldChrome & SelectHTMLAttributes<HTMLSelectElement>>(
  function SelectField({ label, hint, error, children, ...select }, ref) {
    return (
      <Field label={label} hint={hint} error={error}>
        {(control) => (
          <select ref={ref} className="select" {...select} {...control}>
            {children}
          </select>
        )}
      </Field>
    );
  },
);

/** A checkbox with its label to the right and an optional hint under it. */
export const CheckboxField = forwardRef<HTMLInputElement, { label: ReactNode; hint?: ReactNode; error?: string } & Omit<InputHTMLAttributes<HTMLInputElement>, 'type'>>(
  function CheckboxField({ label, hint, error, ...input }, ref) {
    const id = useId();
    const describedBy = [hint !== undefined && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ') || undefined;
    return (
      <div className="checkbox">
        <input ref={ref} id={id} type="checkbox" className="checkbox__input" aria-invalid={Boolean(error)} aria-describedby={describedBy} {...input} />
        <div className="checkbox__text">
          <label htmlFor={id} className="checkbox__label">
            {label}
          </label>
          {hint !== undefined && (
            <span id={`${id}-hint`} className="field__hint">
              {hint}
            </span>
          )}
          {error && (
            <span id={`${id}-error`} className="field__error">
              {error}
            </span>
          )}
        </div>
      </div>
    );
  },
);
