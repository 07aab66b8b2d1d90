import { useForm } from 'react-hook-form';
import { applyApiError } from '../../api/forms';
import type { Account, KeysRequest } from '../../api/types';
import { Button, TextField } from '../../components';
import { useLinkWithKeys } from '../accounts/api';
import { DEFAULT_REGION, accountRules } from '../accounts/format';
import { NameAndRegionFields } from './AccountFields';

const FIELDS = ['access_key_id', 'secret_access_key', 'region', 'name'] as const;

/** Lab path: link with an IAM user's access keys (stored encrypted, never shown again). */
export function KeysStep({ onLinked, onBack }: { onLinked: (account: Account) => void; onBack: () => void }) {
  const linkWithKeys = useLinkWithKeys();
  const {
    register,
    handleSubmit,
    setError,
    formState: { errors, isSubmitting },
  } = useForm<KeysRequest>({ defaultValues: { access_key_id: '', secret_access_key: '', region: DEFAULT_REGION, name: 'Lab' } });

  const onSubmit = handleSubmit(async (values) => {
    try {
      onLinked(await linkWithKeys.mutateAsync({ ...values, name: values.name.trim() }));
    } catch (error) {
      applyApiError(error, FIELDS, setError);
    }
  });

  return (
    <div className="stack">
      <div>
        <h2>Connect with access keys</h2>
        <p className="muted">For lab and test accounts. Use an IAM user with read-only permissions; for production, connect with an IAM role instead.</p>
      </div>
      <div className="callout callout--warning">
        The secret key is encrypted at rest and never shown again. Rotate or delete the key in AWS to revoke access.
      </div>
      <form className="stack" onSubmit={onSubmit} noValidate aria-label="Access keys">
        {errors.root?.server && (
          <div className="form-alert" role="alert">
            {errors.root.server.message}
          </div>
        )}
        <div className="form-grid">
          <TextField
            label="Access key ID"
            autoComplete="off"
            spellCheck={false}
            placeholder="AKIA…"
            error={errors.access_key_id?.message}
            {...register('access_key_id', accountRules.accessKeyId)}
          />
          <TextField
            label="Secret access key"
            type="password"
            autoComplete="off"
            error={errors.secret_access_key?.message}
            {...register('secret_access_key', accountRules.secretAccessKey)}
          />
        </div>
        <NameAndRegionFields name={register('name', accountRules.name)} region={register('region')} errors={errors} />
        <div className="row row--between">
          <Button variant="ghost" onClick={onBack}>
            Back
          </Button>
          <Button type="submit" variant="primary" loading={isSubmitting}>
            Verify and connect
          </Button>
        </div>
      </form>
    </div>
  );
}
