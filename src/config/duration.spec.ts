import { parseDurationSeconds } from './duration';

describe('parseDurationSeconds', () => {
  it.each([
    ['90', 90],
    ['30s', 30],
    ['15m', 900],
    ['24h', 86400],
    ['7d', 604800],
  ])('%s is %d seconds', (raw, seconds) => {
    expect(parseDurationSeconds(raw)).toBe(seconds);
  });

  it.each(['', '0', '-5', '1.5h', '10w', 'h', '5 m'])('refuses %p', (raw) => {
    expect(parseDurationSeconds(raw)).toBeUndefined();
  });
});
