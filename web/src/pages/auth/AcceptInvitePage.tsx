import { useForm } from 'react-hook-form';
import { Link, useSearchParams } from 'react-router-dom';
import { api, unwrap } from '../../api/client';
import { applyApiError } from '../../api/forms';
import { useSignIn } from '../../auth/hooks';
import { Button, TextField } from '../../components';
import { AuthLayout } from './AuthLayout';
import { PASSWORD_HINT, newPasswordRules } from './validation';

interface AcceptForm {
  password: string;
}

/** Landing page of an invite link (`/invite/accept?token=…`): the invitee chooses a password. */
export function AcceptInvitePage() {
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const signIn = useSignIn();
  const {
    register,
    handleSubmit,
    setError,
    formState: { errors, isSubmitting },
  } = useForm<AcceptForm>({ defaultValues: { password: '' } });

  const onSubmit = handleSubmit(async ({ password }) => {
    try {
      signIn(await unwrap(api.POST('/api/auth/invites/accept', { body: { token, password } })));
    } catch (error) {
      applyApiError(error, ['password'], setError);
    }
  });

  if (token === '') {
    return (
      <AuthLayout title="Invite link incomplete" subtitle="This link has no invite token. Ask your admin to send it again.">
        <Link to="/login">Go to sign in</Link>
      </AuthLayout>
    );
  }

  return (
    <AuthLayout title="Join your team" subtitle="Choose a password to accept the invitation.">
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
          Accept invitation
        </Button>
      </form>
    </AuthLayout>
  );
}
