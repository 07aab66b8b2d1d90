import { useForm } from 'react-hook-form';
import { Link } from 'react-router-dom';
import { api, unwrap } from '../../api/client';
import { applyApiError } from '../../api/forms';
import { useSignIn } from '../../auth/hooks';
import { Button, TextField } from '../../components';
import { AuthLayout } from './AuthLayout';
import { PASSWORD_HINT, emailRules, newPasswordRules } from './validation';

interface SignupForm {
  org_name: string;
  email: string;
  password: string;
}

export function SignupPage() {
  const signIn = useSignIn();
  const {
    register,
    handleSubmit,
    setError,
    formState: { errors, isSubmitting },
  } = useForm<SignupForm>({ defaultValues: { org_name: '', email: '', password: '' } });

  const onSubmit = handleSubmit(async (values) => {
    try {
      signIn(await unwrap(api.POST('/api/auth/signup', { body: { ...values, org_name: values.org_name.trim() } })));
    } catch (error) {
      applyApiError(error, ['org_name', 'email', 'password'], setError);
    }
  });

  return (
    <AuthLayout
      title="Create your organization"
      subtitle="Start seeing where your compute spend goes in minutes."
      footer={
        <>
          Already have an account? <Link to="/login">Sign in</Link>
        </>
      }
    >
      <form className="stack" onSubmit={onSubmit} noValidate>
        {errors.root?.server && (
          <div className="form-alert" role="alert">
            {errors.root.server.message}
          </div>
        )}
        <TextField
          label="Organization name"
          autoComplete="organization"
          error={errors.org_name?.message}
          {...register('org_name', {
            validate: (value) => value.trim().length > 0 || 'Enter your organization name.',
          })}
        />
        <TextField
          label="Work email"
          type="email"
          autoComplete="email"
          error={errors.email?.message}
          {...register('email', emailRules)}
        />
        <TextField
          label="Password"
          type="password"
          autoComplete="new-password"
          hint={PASSWORD_HINT}
          error={errors.password?.message}
          {...register('password', newPasswordRules)}
        />
        <Button type="submit" variant="primary" block loading={isSubmitting}>
          Create account
        </Button>
      </form>
    </AuthLayout>
  );
}
