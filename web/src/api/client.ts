import createClient from 'openapi-fetch';
import type { paths } from './schema';
import { toApiError } from './errors';
import { getAccessToken, getRefreshToken, refreshSession } from '../auth/session';

// Credential endpoints answer 401 for a wrong password or a dead refresh token; refreshing
// and retrying those would be wrong. /api/auth/me, /api/auth/profile and /api/auth/password
// are normal authenticated calls (a wrong current password answers 403, not 401).
function isCredentialEndpoint(url: string): boolean {
  const { pathname } = new URL(url);
  return (
    pathname.startsWith('/api/auth/') &&
    pathname !== '/api/auth/me' &&
    // The caller's own profile and password change are authenticated reads and writes.
    pathname !== '/api/auth/profile' &&
    pathname !== '/api/auth/password'
  );
}

function authorize(request: Request): Request {
  const token = getAccessToken();
  if (token !== null) request.headers.set('Authorization', `Bearer ${token}`);
  return request;
}

/** fetch with the bearer token; on a 401 it refreshes the session once and retries. */
export async function authFetch(request: Request): Promise<Response> {
  if (isCredentialEndpoint(request.url)) return fetch(request);
  const retry = request.clone();
  // After a reload only the refresh token survives; get an access token before the first call.
  if (getAccessToken() === null && getRefreshToken() !== null) await refreshSession();
  const response = await fetch(authorize(request));
  if (response.status !== 401 || getRefreshToken() === null) return response;
  if (!(await refreshSession())) return response;
  return fetch(authorize(retry));
}

export const api = createClient<paths>({ baseUrl: window.location.origin, fetch: authFetch });

type Result<T> = { data?: T; error?: unknown; response: Response };

/** Returns the success body or throws an ApiError built from the error body. */
export async function unwrap<T>(call: Promise<Result<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw toApiError(response, error);
  return data as T;
}
