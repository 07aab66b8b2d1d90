import { useQueryClient } from '@tanstack/react-query';
import { useEffect } from 'react';
import { useNavigate } from 'react-router-dom';
import { onSessionEnded } from './session';

export const SESSION_EXPIRED_NOTICE = 'Your session has expired. Please sign in again.';

/** Sends the user to the login page whenever the session ends, from anywhere in the app. */
export function SessionWatcher() {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  useEffect(
    () =>
      onSessionEnded((reason) => {
        queryClient.clear();
        navigate('/login', { replace: true, state: reason === 'expired' ? { notice: SESSION_EXPIRED_NOTICE } : undefined });
      }),
    [queryClient, navigate],
  );
  return null;
}
