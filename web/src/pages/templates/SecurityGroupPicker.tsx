import { forwardRef, useId, useState } from 'react';
import { errorMessage } from '../../api/errors';
import { CheckboxField, SelectField, Skeleton, TextField } from '../../components';
import { useAccounts } from '../accounts/api';
import { useSecurityGroups } from './api';
import { splitList } from './spec';

type Props = {
  /** Comma-separated ids (the form's representation). */
  value: string;
  onChange: (value: string) => void;
  onBlur?: () => void;
  error?: string;
  disabled?: boolean;
};

/**
 * The security groups of a linked account as checkboxes (name, id, cluster, VPC). Ids chosen
 * earlier that the account does not list stay selectable; when no account can be read the
 * ids can still be typed.
 */
export const SecurityGroupPicker = forwardRef<HTMLInputElement, Props>(function SecurityGroupPicker(
  { value, onChange, onBlur, error, disabled },
  ref,
) {
  const id = useId();
  const accounts = useAccounts();
  const [accountId, setAccountId] = useState('');
  const groups = useSecurityGroups(accountId);
  const chosen = splitList(value);
  const toggle = (group: string, on: boolean) =>
    onChange((on ? [...chosen.filter((g) => g !== group), group] : chosen.filter((g) => g !== group)).join(', '));
  const listed = groups.data?.items ?? [];
  const unlisted = chosen.filter((g) => !listed.some((l) => l.id === g));
  const linked = accounts.data ?? [];

  if (groups.isError) {
    return (
      <TextField
        ref={ref}
        label="Security groups"
        placeholder="sg-0123456789abcdef0"
        hint={`The account's security groups could not be read (${errorMessage(groups.error)}); type comma-separated ids, or leave empty to keep the node group's.`}
        value={value}
        error={error}
        disabled={disabled}
        onChange={(e) => onChange(e.target.value)}
        onBlur={onBlur}
      />
    );
  }
  return (
    <fieldset className="field" aria-describedby={`${id}-hint`} data-testid="security-groups">
      <legend className="field__label">Security groups</legend>
      {linked.length > 1 && (
        <SelectField label="From account" value={accountId || groups.data?.account_id || ''} onChange={(e) => setAccountId(e.target.value)} disabled={disabled}>
          {linked.map((a) => (
            <option key={a.id} value={a.id}>
              {a.name}
            </option>
          ))}
        </SelectField>
      )}
      <span className="field__hint" id={`${id}-hint`}>
        {groups.data
          ? `Attached to each node; none ticked keeps the node group's. Read from ${groups.data.account_name} (${groups.data.region}).`
          : 'Reading the account’s security groups…'}
      </span>
      {groups.isPending && <Skeleton height={60} />}
      <div className="stack" style={{ maxHeight: 220, overflowY: 'auto' }}>
        {listed.map((g, i) => (
          <CheckboxField
            key={g.id}
            ref={i === 0 ? ref : undefined}
            label={`${g.name} · ${g.id}${g.cluster ? ` · cluster ${g.cluster}` : ''}${g.vpc_id ? ` · ${g.vpc_id}` : ''}`}
            checked={chosen.includes(g.id)}
            disabled={disabled}
            onBlur={onBlur}
            onChange={(e) => toggle(g.id, e.target.checked)}
          />
        ))}
        {unlisted.map((g) => (
          <CheckboxField key={g} label={`${g} (not in this account)`} checked disabled={disabled} onChange={() => toggle(g, false)} />
        ))}
      </div>
      {error && (
        <span className="field__error" role="alert">
          {error}
        </span>
      )}
    </fieldset>
  );
});
