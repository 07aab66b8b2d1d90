import { useForm } from 'react-hook-form';
import { Link, useLocation } from 'react-router-dom';
import { api, unwrap } from '../../api/client';
import { applyApiError } from '../../api/forms';
import { useSignIn } from '../../auth/hooks';
import { Button, TextField } from '../../components';
import { AuthLayout } from './AuthLayout';
import { emailRules } from './validation';

interface LoginForm {
  email: string;
  password: string;
}

interface LoginLocationState {
  from?: string;
  notice?: string;
}

export function LoginPage() {
  const location = useLocation();
  const state = (location.state ?? {}) as LoginLocationState;
  const signIn = useSignIn();
  const {
    register,
    handleSubmit,
    setError,
    formState: { errors, isSubmitting },
  } = useForm<LoginForm>({ defaultValues: { email: '', password: '' } });

  const onSubmit = handleSubmit(async (values) => {
    try {
      signIn(await unwrap(api.POST('/api/auth/token', { body: values })), state.from);
    } catch (error) {
      applyApiError(error, ['email', 'password'], setError);
    }
  });

  return (
    <AuthLayout
      title="Sign in"
      subtitle="Welcome back. Sign in to your organization."
      footer={
        <>
          New to Spot Optimizer? <Link to="/signup">Create an account</Link>
        </>
      }
    >
      <form className="stack" onSubmit={onSubmit} noValidate>
        {state.notice && <div className="callout">{state.notice}</div>}
        {errors.root?.server && (
          <div className="form-alert" role="alert">
            {errors.root.server.message}
          </div>
        )}
        <TextField
          label="Email"
          type="email"
          autoComplete="email"
          error={errors.email?.message}
          {...register('email', emailRules)}
        />
        <TextField
          label="Password"
          type="password"
          autoComplete="current-password"
          error={errors.password?.message}
          {...register('password', { required: 'Enter your password.' })}
        />
        <Button type="submit" variant="primary" block loading={isSubmitting}>
          Sign in
        </Button>
        <Link to="/forgot-password" className="auth-forgot">
          Forgot your password?
        </Link>
      </form>
    </AuthLayout>
  );
}
