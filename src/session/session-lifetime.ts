import type { SessionData } from 'express-session';

export interface SessionLimits {
  idleTtlSeconds: number;
  absoluteTtlSeconds: number;
}

export interface SessionExpiry {
  idleExpiresAt: number;
  absoluteExpiresAt: number;
  /** Whichever comes first. */
  expiresAt: number;
}

type Timestamps = Pick<SessionData, 'createdAt' | 'lastSeenAt'>;

const MAX_ACTIVITY_WRITE_INTERVAL_MS = 60_000;

export function sessionExpiry(session: Timestamps, limits: SessionLimits): SessionExpiry {
  const idleExpiresAt = session.lastSeenAt + limits.idleTtlSeconds * 1000;
  const absoluteExpiresAt = session.createdAt + limits.absoluteTtlSeconds * 1000;
  return { idleExpiresAt, absoluteExpiresAt, expiresAt: Math.min(idleExpiresAt, absoluteExpiresAt) };
}

export function isSessionExpired(session: Timestamps, limits: SessionLimits, now: number): boolean {
  return now >= sessionExpiry(session, limits).expiresAt;
}

/**
 * lastSeenAt is written at most once a minute so a busy session does not cost a store write per request;
 * with short idle limits the interval shrinks to a quarter of it, so the idle window stays meaningful.
 */
export function shouldRecordActivity(session: Timestamps, limits: SessionLimits, now: number): boolean {
  const interval = Math.min(MAX_ACTIVITY_WRITE_INTERVAL_MS, (limits.idleTtlSeconds * 1000) / 4);
  return now - session.lastSeenAt >= interval;
}

/** Seconds the store should keep a session: until it would expire on the server, at least one. */
export function storeTtlSeconds(session: Partial<Timestamps>, limits: SessionLimits, now: number): number {
  if (session.createdAt === undefined || session.lastSeenAt === undefined) return limits.idleTtlSeconds;
  const remaining = sessionExpiry(session as Timestamps, limits).expiresAt - now;
  return Math.max(1, Math.ceil(remaining / 1000));
}
