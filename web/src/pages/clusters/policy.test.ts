import { formatSelector, parseSelector } from './policy';

describe('label selectors', () => {
  it('reads key=value pairs separated by commas', () => {
    expect(parseSelector('app=api, tier = web')).toEqual({ app: 'api', tier: 'web' });
    expect(parseSelector('app.kubernetes.io/name=api,')).toEqual({ 'app.kubernetes.io/name': 'api' });
    expect(parseSelector('  ')).toEqual({});
    expect(parseSelector('team=')).toEqual({ team: '' });
  });

  it('refuses a part that is not key=value', () => {
    expect(parseSelector('app')).toBeNull();
    expect(parseSelector('=api')).toBeNull();
    expect(parseSelector('app=api tier=web')).toBeNull();
  });

  it('writes a selector back as text', () => {
    expect(formatSelector({ app: 'api', tier: 'web' })).toBe('app=api, tier=web');
    expect(formatSelector(undefined)).toBe('');
  });
});
