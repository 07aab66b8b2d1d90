import { getAccessToken, onSessionEnded, storeTokens } from '../auth/session';
import { api } from './client';
import { apiError, json, mockApi, tokens } from '../test/api';

const me = { user: { id: 'u' } };

describe('authFetch', () => {
  it('refreshes once on 401 and retries with the new access token', async () => {
    storeTokens(tokens);
    const { calls } = mockApi({
      'GET /api/auth/me': (request) =>
        request.headers.get('Authorization') === 'Bearer access-2' ? json(me) : apiError(401, 'unauthorized', 'expired'),
      'POST /api/auth/refresh': () => json({ ...tokens, access_token: 'access-2', refresh_token: 'refresh-2' }),
    });

    const { data } = await api.GET('/api/auth/me');

    expect(data).toEqual(me);
    expect(calls.map((call) => `${call.method} ${call.url.pathname}`)).toEqual([
      'GET /api/auth/me',
      'POST /api/auth/refresh',
      'GET /api/auth/me',
    ]);
    expect(calls[1]?.body).toEqual({ refresh_token: 'refresh-1' });
    expect(localStorage.getItem('spot.refresh_token')).toBe('refresh-2');
  });

  it('shares one refresh between concurrent 401s because refresh tokens rotate', async () => {
    storeTokens(tokens);
    const { calls } = mockApi({
      'GET /api/org/members': (request) =>
        request.headers.get('Authorization') === 'Bearer access-2' ? json({ items: [] }) : apiError(401, 'unauthorized', 'expired'),
      'POST /api/auth/refresh': () => json({ ...tokens, access_token: 'access-2', refresh_token: 'refresh-2' }),
    });

    await Promise.all([api.GET('/api/org/members'), api.GET('/api/org/members'), api.GET('/api/org/members')]);

    expect(calls.filter((call) => call.url.pathname === '/api/auth/refresh')).toHaveLength(1);
  });

  it('gets an access token from the stored refresh token after a reload', async () => {
    localStorage.setItem('spot.refresh_token', 'refresh-1');
    const { calls } = mockApi({
      'POST /api/auth/refresh': () => json({ ...tokens, access_token: 'access-2', refresh_token: 'refresh-2' }),
      'GET /api/auth/me': () => json(me),
    });

    await api.GET('/api/auth/me');

    expect(calls[1]?.authorization).toBe('Bearer access-2');
  });

  it('ends the session when the refresh token is rejected', async () => {
    storeTokens(tokens);
    const ended = vi.fn();
    const unsubscribe = onSessionEnded(ended);
    mockApi({
      'GET /api/auth/me': () => apiError(401, 'unauthorized', 'expired'),
      'POST /api/auth/refresh': () => apiError(401, 'unauthorized', 'refresh token reused'),
    });

    const { response } = await api.GET('/api/auth/me');
    unsubscribe();

    expect(response.status).toBe(401);
    expect(ended).toHaveBeenCalledWith('expired');
    expect(getAccessToken()).toBeNull();
    expect(localStorage.getItem('spot.refresh_token')).toBeNull();
  });

  it('never refreshes on a failed sign-in', async () => {
    storeTokens(tokens);
    const { calls } = mockApi({ 'POST /api/auth/token': () => apiError(401, 'unauthorized', 'bad credentials') });

    await api.POST('/api/auth/token', { body: { email: 'a@b.c', password: 'x' } });

    expect(calls).toHaveLength(1);
  });
});
