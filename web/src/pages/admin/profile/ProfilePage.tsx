import { useEffect } from 'react';
import { useForm } from 'react-hook-form';
import { applyApiError } from '../../../api/forms';
import { useMe } from '../../../auth/MeContext';
import { Button, Card, ErrorState, SkeletonRows, TextField, useToast } from '../../../components';
import { PageHeader } from '../../../layout/PageHeader';
import { formatDateTime } from '../../../lib/format';
import { PASSWORD_HINT, emailRules, newPasswordRules } from '../../auth/validation';
import { useChangePassword, useProfile, useUpdateProfile, type Profile } from '../console/api';

export const PROFILE_PATH = '/profile';

/** The signed-in user's profile: name, e-mail and password, each change re-authenticated. */
export function ProfilePage() {
  const me = useMe();
  const profile = useProfile();
  if (me.impersonated_by) {
    return (
      <>
        <PageHeader title="Profile" />
        <Card>
          <p className="muted">You are acting as {me.user.email}: an impersonation session cannot change the user&apos;s name, e-mail or password.</p>
        </Card>
      </>
    );
  }
  return (
    <>
      <PageHeader title="Profile" subtitle="Your name, e-mail and password. Every change asks for your current password." />
      {profile.isPending && <SkeletonRows label="Loading your profile" />}
      {profile.isError && <ErrorState error={profile.error} onRetry={() => void profile.refetch()} />}
      {profile.isSuccess && (
        <div className="profile-grid">
          <DetailsForm profile={profile.data} />
          <PasswordForm />
        </div>
      )}
    </>
  );
}

interface DetailsValues {
  name: string;
  email: string;
  current_password: string;
}

function DetailsForm({ profile }: { profile: Profile }) {
  const update = useUpdateProfile();
  const toast = useToast();
  const {
    register,
    handleSubmit,
    setError,
    reset,
    formState: { errors, isSubmitting, isDirty },
  } = useForm<DetailsValues>({ defaultValues: { name: profile.name ?? '', email: profile.email, current_password: '' } });
  useEffect(() => reset({ name: profile.name ?? '', email: profile.email, current_password: '' }), [profile, reset]);
  const onSubmit = handleSubmit(async (values) => {
    try {
      await update.mutateAsync(values);
      toast.success('Profile saved.');
    } catch (error) {
      applyApiError(error, ['name', 'email', 'current_password'], setError);
    }
  });
  return (
    <Card title="Name and e-mail">
      <form className="stack" onSubmit={onSubmit} noValidate aria-label="Name and e-mail">
        {errors.root?.server && (
          <div className="form-alert" role="alert">
            {errors.root.server.message}
          </div>
        )}
        <TextField label="Name" autoComplete="name" error={errors.name?.message} {...register('name', { maxLength: { value: 100, message: 'Use at most 100 characters.' } })} />
        <TextField label="Email" type="email" autoComplete="email" error={errors.email?.message} {...register('email', emailRules)} />
        <TextField
          label="Current password"
          type="password"
          autoComplete="current-password"
          error={errors.current_password?.message}
          {...register('current_password', { required: 'Enter your current password to save.' })}
        />
        <div className="row row--between">
          <span className="muted">
            {profile.platform_role === 'super_admin' ? 'Platform super-admin · ' : ''}member since {formatDateTime(profile.created_at)}
          </span>
          <Button type="submit" variant="primary" loading={isSubmitting} disabled={!isDirty}>
            Save
          </Button>
        </div>
      </form>
    </Card>
  );
}

interface PasswordValues {
  current_password: string;
  new_password: string;
  confirm: string;
}

function PasswordForm() {
  const change = useChangePassword();
  const toast = useToast();
  const {
    register,
    handleSubmit,
    setError,
    reset,
    getValues,
    formState: { errors, isSubmitting },
  } = useForm<PasswordValues>({ defaultValues: { current_password: '', new_password: '', confirm: '' } });
  const onSubmit = handleSubmit(async ({ current_password, new_password }) => {
    try {
      const done = await change.mutateAsync({ current_password, new_password });
      reset();
      toast.success(
        done.sessions_revoked === 0
          ? 'Password changed.'
          : `Password changed. ${done.sessions_revoked} other session${done.sessions_revoked === 1 ? ' was' : 's were'} signed out.`,
      );
    } catch (error) {
      applyApiError(error, ['current_password', 'new_password'], setError);
    }
  });
  return (
    <Card title="Password">
      <form className="stack" onSubmit={onSubmit} noValidate aria-label="Change password">
        {errors.root?.server && (
          <div className="form-alert" role="alert">
            {errors.root.server.message}
          </div>
        )}
        <TextField
          label="Current password"
          type="password"
          autoComplete="current-password"
          error={errors.current_password?.message}
          {...register('current_password', { required: 'Enter your current password.' })}
        />
        <TextField
          label="New password"
          type="password"
          autoComplete="new-password"
          hint={PASSWORD_HINT}
          error={errors.new_password?.message}
          {...register('new_password', newPasswordRules)}
        />
        <TextField
          label="Repeat the new password"
          type="password"
          autoComplete="new-password"
          error={errors.confirm?.message}
          {...register('confirm', { validate: (v) => v === getValues('new_password') || 'The two passwords differ.' })}
        />
        <p className="muted">Your other sessions (other browsers and devices) are signed out when the password changes.</p>
        <div className="row row--end">
          <Button type="submit" variant="primary" loading={isSubmitting}>
            Change password
          </Button>
        </div>
      </form>
    </Card>
  );
}
