import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useCallback } from 'react';
import { useNavigate } from 'react-router-dom';
import { api, unwrap } from '../api/client';
import type { TokenResponse } from '../api/types';
import { endSession, getRefreshToken, storeTokens } from './session';

export const meQueryKey = ['me'] as const;

export function useMeQuery() {
  return useQuery({ queryKey: meQueryKey, queryFn: () => unwrap(api.GET('/api/auth/me')) });
}

/** Stores fresh tokens and enters the app through the gateway (or the page that sent us to login). */
export function useSignIn() {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  return useCallback(
    (tokens: TokenResponse, redirectTo = '/') => {
      storeTokens(tokens);
      queryClient.clear();
      navigate(redirectTo, { replace: true });
    },
    [queryClient, navigate],
  );
}

/** Revokes the refresh token server-side, then forgets the session locally even if that call fails. */
export function useSignOut() {
  return useCallback(async () => {
    const refreshToken = getRefreshToken();
    if (refreshToken !== null) {
      await api.POST('/api/auth/logout', { body: { refresh_token: refreshToken } }).catch(() => undefined);
    }
    endSession('signed_out');
  }, []);
}
