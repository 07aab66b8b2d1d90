import { Navigate, Outlet, useLocation } from 'react-router-dom';
import { hasSession } from './session';

export function RequireAuth() {
  const location = useLocation();
  if (!hasSession()) {
    return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  }
  return <Outlet />;
}

/** Signed-in users visiting /login or /signup go straight into the app. */
export function RedirectIfSignedIn() {
  return hasSession() ? <Navigate to="/" replace /> : <Outlet />;
}
