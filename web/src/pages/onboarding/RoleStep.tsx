import { useEffect } from 'react';
import { useForm } from 'react-hook-form';
import { applyApiError } from '../../api/forms';
import type { Account, LinkInfo, VerifyRequest } from '../../api/types';
import { Button, CopyButton, ErrorState, SkeletonRows, TextField } from '../../components';
import { download } from '../../lib/download';
import { useLinkInfo, useVerifyRole } from '../accounts/api';
import { DEFAULT_REGION, accountRules, defaultRoleArn } from '../accounts/format';
import { NameAndRegionFields } from './AccountFields';

const FIELDS = ['aws_account_id', 'role_arn', 'region', 'name'] as const;

/** Production path: deploy the CloudFormation role with the org's external ID, then verify it. */
export function RoleStep({ onLinked, onBack }: { onLinked: (account: Account) => void; onBack: () => void }) {
  const link = useLinkInfo();
  return (
    <div className="stack">
      <div>
        <h2>Connect with an IAM role</h2>
        <p className="muted">
          Spot Optimizer assumes a read-only role in your account. A CloudFormation stack creates it with your organization&apos;s
          external ID, so no long-lived keys leave AWS.
        </p>
      </div>
      {link.isPending && <SkeletonRows rows={3} label="Preparing your CloudFormation template" />}
      {link.isError && <ErrorState error={link.error} title="Could not prepare the template" onRetry={() => void link.refetch()} />}
      {link.isSuccess && (
        <>
          {link.data.provider === 'sim' && (
            <div className="callout callout--info">
              Demo mode: this server uses the built-in AWS simulator instead of AWS. Any 12-digit account ID works, for example
              123456789012; a role named NoAccess simulates a denied AssumeRole.
            </div>
          )}
          <StackInstructions link={link.data} />
          <VerifyForm onLinked={onLinked} onBack={onBack} />
        </>
      )}
      {!link.isSuccess && (
        <div className="row">
          <Button variant="ghost" onClick={onBack}>
            Back
          </Button>
        </div>
      )}
    </div>
  );
}

function StackInstructions({ link }: { link: LinkInfo }) {
  const downloadTemplate = () =>
    download(new Blob([link.cloudformation_template], { type: 'application/x-yaml' }), 'spot-optimizer-role.yaml');
  return (
    <ol className="steps-list">
      <li>
        <h3>Copy your external ID</h3>
        <div className="row row--wrap">
          <input className="input input--mono" readOnly value={link.external_id} aria-label="External ID" onFocus={(event) => event.currentTarget.select()} />
          <CopyButton value={link.external_id} label="Copy external ID" />
        </div>
      </li>
      <li>
        <h3>Create the stack in your AWS account</h3>
        <p className="muted">The quick-create link fills in the external ID for you. Acknowledge IAM resource creation and create the stack.</p>
        <div className="row row--wrap">
          <a className="btn btn--primary" href={link.quick_create_url} target="_blank" rel="noopener noreferrer">
            Open AWS CloudFormation console
          </a>
          <Button onClick={downloadTemplate}>Download template</Button>
        </div>
        <details className="disclosure">
          <summary>View template</summary>
          <pre className="code-block">{link.cloudformation_template}</pre>
        </details>
      </li>
      <li>
        <h3>Enter the stack&apos;s account and role</h3>
        <p className="muted">The role ARN is the stack&apos;s RoleArn output.</p>
      </li>
    </ol>
  );
}

function VerifyForm({ onLinked, onBack }: { onLinked: (account: Account) => void; onBack: () => void }) {
  const verify = useVerifyRole();
  const {
    register,
    handleSubmit,
    setError,
    setValue,
    watch,
    formState: { errors, isSubmitting, dirtyFields },
  } = useForm<VerifyRequest>({ defaultValues: { aws_account_id: '', role_arn: '', region: DEFAULT_REGION, name: 'Production' } });

  // The stack always names the role SpotOptimizer: suggest its ARN until the user edits it.
  const awsAccountId = watch('aws_account_id');
  const roleArnEdited = dirtyFields.role_arn === true;
  useEffect(() => {
    if (!roleArnEdited && /^\d{12}$/.test(awsAccountId)) setValue('role_arn', defaultRoleArn(awsAccountId));
  }, [awsAccountId, roleArnEdited, setValue]);

  const onSubmit = handleSubmit(async (values) => {
    try {
      onLinked(await verify.mutateAsync({ ...values, name: values.name.trim() }));
    } catch (error) {
      applyApiError(error, FIELDS, setError);
    }
  });

  return (
    <form className="stack" onSubmit={onSubmit} noValidate aria-label="Verify role">
      {errors.root?.server && (
        <div className="form-alert" role="alert">
          {errors.root.server.message}
        </div>
      )}
      <div className="form-grid">
        <TextField
          label="AWS account ID"
          inputMode="numeric"
          autoComplete="off"
          placeholder="123456789012"
          error={errors.aws_account_id?.message}
          {...register('aws_account_id', accountRules.awsAccountId)}
        />
        <TextField
          label="Role ARN"
          autoComplete="off"
          placeholder="arn:aws:iam::123456789012:role/SpotOptimizer"
          error={errors.role_arn?.message}
          {...register('role_arn', {
            ...accountRules.roleArn,
            validate: (arn, values) =>
              arn.split(':')[4] === values.aws_account_id || 'This role belongs to a different AWS account than the ID above.',
          })}
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
  );
}
