import { isSessionExpired, sessionExpiry, shouldRecordActivity, storeTtlSeconds } from './session-lifetime';

const limits = { idleTtlSeconds: 3600, absoluteTtlSeconds: 86_400 };
const t0 = 1_700_000_000_000;

describe('session lifetime', () => {
  it('expires at the idle limit after the last recorded activity', () => {
    const session = { createdAt: t0, lastSeenAt: t0 + 10_000 };
    expect(sessionExpiry(session, limits)).toEqual({
      idleExpiresAt: t0 + 10_000 + 3_600_000,
      absoluteExpiresAt: t0 + 86_400_000,
      expiresAt: t0 + 10_000 + 3_600_000,
    });
    expect(isSessionExpired(session, limits, t0 + 10_000 + 3_599_999)).toBe(false);
    expect(isSessionExpired(session, limits, t0 + 10_000 + 3_600_000)).toBe(true);
  });

  it('expires at the absolute limit however recent the activity', () => {
    const session = { createdAt: t0, lastSeenAt: t0 + 86_000_000 };
    expect(sessionExpiry(session, limits).expiresAt).toBe(t0 + 86_400_000);
    expect(isSessionExpired(session, limits, t0 + 86_400_000)).toBe(true);
  });

  it('records activity at most once a minute, or a quarter of a short idle limit', () => {
    const session = { createdAt: t0, lastSeenAt: t0 };
    expect(shouldRecordActivity(session, limits, t0 + 59_999)).toBe(false);
    expect(shouldRecordActivity(session, limits, t0 + 60_000)).toBe(true);
    const short = { idleTtlSeconds: 2, absoluteTtlSeconds: 4 };
    expect(shouldRecordActivity(session, short, t0 + 499)).toBe(false);
    expect(shouldRecordActivity(session, short, t0 + 500)).toBe(true);
  });

  it('keeps a session in the store until it would expire, at least a second', () => {
    const session = { createdAt: t0, lastSeenAt: t0 };
    expect(storeTtlSeconds(session, limits, t0)).toBe(3600);
    expect(storeTtlSeconds(session, limits, t0 + 3_599_500)).toBe(1);
    expect(storeTtlSeconds(session, limits, t0 + 9_999_999)).toBe(1);
    expect(storeTtlSeconds({}, limits, t0)).toBe(3600);
  });
});
