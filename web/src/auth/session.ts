import type { TokenResponse } from '../api/types';

// The access token lives only in memory so an XSS payload cannot read it from storage after
// a reload; the refresh token is persisted so a reload can obtain a new access token.
const REFRESH_KEY = 'spot.refresh_token';

let accessToken: string | null = null;
let inFlightRefresh: Promise<boolean> | null = null;

/** Why the session ended: the user signed out, or the server stopped accepting the refresh token. */
export type SessionEndReason = 'signed_out' | 'expired';
const endedListeners = new Set<(reason: SessionEndReason) => void>();
const tokenListeners = new Set<() => void>();

export function storeTokens(tokens: TokenResponse): void {
  accessToken = tokens.access_token;
  localStorage.setItem(REFRESH_KEY, tokens.refresh_token);
  tokenListeners.forEach((listener) => listener());
}

/** Called after every sign-in or refresh (the live event stream reconnects with the new token). */
export function onAccessTokenChanged(listener: () => void): () => void {
  tokenListeners.add(listener);
  return () => {
    tokenListeners.delete(listener);
  };
}

/** Seconds since the epoch at which the access token expires, read from its JWT `exp` claim. */
export function accessTokenExpiry(): number | null {
  const payload = accessToken?.split('.')[1];
  if (payload === undefined) return null;
  try {
    const claims: unknown = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/')));
    const exp = typeof claims === 'object' && claims !== null ? (claims as { exp?: unknown }).exp : undefined;
    return typeof exp === 'number' ? exp : null;
  } catch {
    return null;
  }
}

export function getAccessToken(): string | null {
  return accessToken;
}

export function getRefreshToken(): string | null {
  return localStorage.getItem(REFRESH_KEY);
}

export function hasSession(): boolean {
  return getRefreshToken() !== null;
}

/** Forgets both tokens and tells subscribers (the router) that the user must sign in again. */
export function endSession(reason: SessionEndReason): void {
  accessToken = null;
  localStorage.removeItem(REFRESH_KEY);
  endedListeners.forEach((listener) => listener(reason));
}

export function onSessionEnded(listener: (reason: SessionEndReason) => void): () => void {
  endedListeners.add(listener);
  return () => {
    endedListeners.delete(listener);
  };
}

/**
 * Exchanges the refresh token for a new pair. Concurrent callers share one request: the server
 * rotates refresh tokens, so a second parallel refresh with the old token would be rejected.
 */
export function refreshSession(): Promise<boolean> {
  inFlightRefresh ??= doRefresh().finally(() => {
    inFlightRefresh = null;
  });
  return inFlightRefresh;
}

async function doRefresh(): Promise<boolean> {
  const refreshToken = getRefreshToken();
  if (refreshToken === null) return false;
  try {
    const response = await fetch(new URL('/api/auth/refresh', window.location.origin), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
    if (response.status === 400 || response.status === 401) {
      endSession('expired');
      return false;
    }
    if (!response.ok) return false;
    storeTokens((await response.json()) as TokenResponse);
    return true;
  } catch {
    // Network failure: keep the refresh token so a later attempt can still succeed.
    return false;
  }
}
