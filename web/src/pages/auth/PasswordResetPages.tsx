import { useState } from 'react';
import { useForm } from 'react-hook-form';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import { api, unwrap } from '../../api/client';
import { applyApiError } from '../../api/forms';
import { useSignIn } from '../../auth/hooks';
import { Button, TextField } from '../../components';
import { AuthLayout } from './AuthLayout';
import { PASSWORD_HINT, emailRules, newPasswordRules } from './validation';

export const FORGOT_PASSWORD_PATH = '/forgot-password';
export const RESET_PASSWORD_PATH = '/reset-password';
export const ACCEPT_OWNER_INVITE_PATH = '/accept-owner-invite';

/** Asks for a reset link. The answer never says whether the address is registered. */
export function ForgotPasswordPage() {
  const [sentTo, setSentTo] = useState<string | null>(null);
  const {
    register,
    handleSubmit,
    setError,
    formState: { errors, isSubmitting },
  } = useForm<{ email: string }>({ defaultValues: { email: '' } });
  const onSubmit = handleSubmit(async ({ email }) => {
    try {
      await unwrap(api.POST('/api/auth/password-reset', { body: { email } }));
      setSentTo(email);
    } catch (error) {
      applyApiError(error, ['email'], setError);
    }
  });
  if (sentTo !== null) {
    return (
      <AuthLayout
        title="Check your inbox"
        subtitle={`If ${sentTo} belongs to an account, a reset link valid for one hour is on its way. Without a mail server, your administrator finds the link in the server log.`}
      >
        <Link to="/login">Back to sign in</Link>
      </AuthLayout>
    );
  }
  return (
    <AuthLayout
      title="Reset your password"
      subtitle="Enter the e-mail you sign in with and we will send you a link to choose a new password."
      footer={<Link to="/login">Back to sign in</Link>}
    >
      <form className="stack" onSubmit={onSubmit} noValidate>
        {errors.root?.server && (
          <div className="form-alert" role="alert">
            {errors.root.server.message}
          </div>
        )}
        <TextField label="Email" type="email" autoComplete="email" error={errors.email?.message} {...register('email', emailRules)} />
        <Button type="submit" variant="primary" block loading={isSubmitting}>
          Send reset link
        </Button>
      </form>
    </AuthLayout>
  );
}

/** Landing page of a reset link (`/reset-password?token=…`). */
export function ResetPasswordPage() {
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const navigate = useNavigate();
  const {
    register,
    handleSubmit,
    setError,
    formState: { errors, isSubmitting },
  } = useForm<{ password: string }>({ defaultValues: { password: '' } });
  const onSubmit = handleSubmit(async ({ password }) => {
    try {
      await unwrap(api.POST('/api/auth/password-reset/confirm', { body: { token, password } }));
      navigate('/login', { replace: true, state: { notice: 'Your password was changed and every session was signed out. Sign in with the new password.' } });
    } catch (error) {
      applyApiError(error, ['password'], setError);
    }
  });
  if (token === '') {
    return (
      <AuthLayout title="Reset link incomplete" subtitle="This link has no reset token. Ask for a new one.">
        <Link to={FORGOT_PASSWORD_PATH}>Ask for a new link</Link>
      </AuthLayout>
    );
  }
  return (
    <AuthLayout title="Choose a new password" subtitle="Every session of your account is signed out when you save it." footer={<Link to={FORGOT_PASSWORD_PATH}>Ask for a new link</Link>}>
      <form className="stack" onSubmit={onSubmit} noValidate>
        {errors.root?.server && (
          <div className="form-alert" role="alert">
            {errors.root.server.message}
          </div>
        )}
        <TextField
          label="New password"
          type="password"
          autoComplete="new-password"
          hint={PASSWORD_HINT}
          error={errors.password?.message}
          {...register('password', newPasswordRules)}
        />
        <Button type="submit" variant="primary" block loading={isSubmitting}>
          Save the new password
        </Button>
      </form>
    </AuthLayout>
  );
}

/** Landing page of an owner invite (`/accept-owner-invite?token=…`): the new owner sets a password. */
export function AcceptOwnerInvitePage() {
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const signIn = useSignIn();
  const {
    register,
    handleSubmit,
    setError,
    formState: { errors, isSubmitting },
  } = useForm<{ password: string }>({ defaultValues: { password: '' } });
  const onSubmit = handleSubmit(async ({ password }) => {
    try {
      signIn(await unwrap(api.POST('/api/auth/owner-invites/accept', { body: { token, password } })));
    } catch (error) {
      applyApiError(error, ['password'], setError);
    }
  });
  if (token === '') {
    return (
      <AuthLayout title="Invite link incomplete" subtitle="This link has no invite token. Ask the platform team to send it again.">
        <Link to="/login">Go to sign in</Link>
      </AuthLayout>
    );
  }
  return (
    <AuthLayout title="Your organization is ready" subtitle="Choose a password to become its owner and sign in.">
      <form className="stack" onSubmit={onSubmit} noValidate>
        {errors.root?.server && (
          <div className="form-alert" role="alert">
            {errors.root.server.message}
          </div>
        )}
        <TextField
          label="Password"
          type="password"
          autoComplete="new-password"
          hint={PASSWORD_HINT}
          error={errors.password?.message}
          {...register('password', newPasswordRules)}
        />
        <Button type="submit" variant="primary" block loading={isSubmitting}>
          Accept and sign in
        </Button>
      </form>
    </AuthLayout>
  );
}
