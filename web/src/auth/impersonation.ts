import { api } from '../api/client';
import type { TokenResponse } from '../api/types';
import { endSession, getRefreshToken, storeTokens } from './session';

// While a platform admin impersonates a client, the admin's own refresh token waits here and
// the impersonation's tokens take the normal slots; ending swaps them back.
const ADMIN_REFRESH_KEY = 'spot.admin_refresh_token';

/** Switches the browser to an impersonation session, keeping the admin's session aside. */
export function startImpersonation(tokens: TokenResponse): void {
  const adminRefresh = getRefreshToken();
  if (adminRefresh !== null) localStorage.setItem(ADMIN_REFRESH_KEY, adminRefresh);
  storeTokens(tokens);
}

export function hasStashedAdminSession(): boolean {
  return localStorage.getItem(ADMIN_REFRESH_KEY) !== null;
}

/**
 * Ends the impersonation on the server (its tokens die at once) and resumes the admin's own
 * session. Returns false when the admin's session could not be resumed (the user must sign in).
 */
export async function endImpersonation(): Promise<boolean> {
  await api.POST('/api/admin/impersonation/end').catch(() => undefined);
  const adminRefresh = localStorage.getItem(ADMIN_REFRESH_KEY);
  localStorage.removeItem(ADMIN_REFRESH_KEY);
  if (adminRefresh === null) {
    endSession('signed_out');
    return false;
  }
  try {
    const response = await fetch(new URL('/api/auth/refresh', window.location.origin), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: adminRefresh }),
    });
    if (!response.ok) {
      endSession('expired');
      return false;
    }
    storeTokens((await response.json()) as TokenResponse);
    return true;
  } catch {
    endSession('expired');
    return false;
  }
}
