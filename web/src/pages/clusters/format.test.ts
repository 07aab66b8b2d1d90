import { costTrend } from './format';

describe('costTrend', () => {
  it('keeps one decimal under 10 % and rounds above', () => {
    expect(costTrend(-0.0476)).toEqual({ direction: 'down', percent: '4.8%' });
    expect(costTrend(0.25)).toEqual({ direction: 'up', percent: '25%' });
    expect(costTrend(0.0996)).toEqual({ direction: 'up', percent: '10%' });
    expect(costTrend(-1)).toEqual({ direction: 'down', percent: '100%' });
    expect(costTrend(12.5)).toEqual({ direction: 'up', percent: '1,250%' });
  });

  it('reads a change that rounds to 0 % as flat and a missing one as none', () => {
    expect(costTrend(0)).toEqual({ direction: 'flat', percent: '0%' });
    expect(costTrend(-1e-16)).toEqual({ direction: 'flat', percent: '0%' });
    expect(costTrend(0.0004)).toEqual({ direction: 'flat', percent: '0%' });
    expect(costTrend(0.0005)).toEqual({ direction: 'up', percent: '0.1%' });
    expect(costTrend(undefined)).toEqual({ direction: 'none', percent: '' });
    expect(costTrend(null)).toEqual({ direction: 'none', percent: '' });
    expect(costTrend(Number.NaN)).toEqual({ direction: 'none', percent: '' });
  });
});
