import { RedisStore } from 'connect-redis';
import type { CookieOptions } from 'express';
import type { SessionData } from 'express-session';
import type { RedisClient } from '../redis/redis.module';
import { SessionLimits, storeTtlSeconds } from './session-lifetime';
import { SessionStore } from './session.store';

type Callback<T = void> = (error?: unknown, result?: T) => void;

/** A stored session as a positional array: no field names, times as epoch milliseconds. */
type StoredSession = [
  userId: string,
  publicId: string,
  authAt: number,
  createdAt: number,
  lastSeenAt: number,
  csrfToken: string,
  userAgent: string | null,
  ip: string | null,
  cookieExpires: number | null,
  /** 1 when the login passed a second factor; absent in sessions stored before second factors. */
  mfa?: 1 | 0,
];

/**
 * Sessions as Redis strings under `<prefix>sess:<sid>`, each expiring when the session would end on the
 * server. connect-redis reads, creates and destroys them. Its `set` is an upsert, which would let a request
 * in flight write back a session that a logout or revocation deleted meanwhile, so the end-of-request write
 * is this store's own: SET … XX, which updates a live key and never recreates a deleted one.
 */
export class RedisSessionStore extends SessionStore {
  private readonly sessions: RedisStore;

  constructor(
    private readonly redis: RedisClient,
    keyPrefix: string,
    private readonly limits: SessionLimits,
    private readonly cookieAttributes: CookieOptions,
  ) {
    super();
    this.sessions = new RedisStore({
      client: redis,
      prefix: `${keyPrefix}sess:`,
      // A request that changes nothing writes nothing; activity is recorded at most once a minute instead.
      disableTouch: true,
      ttl: (session) => this.ttl(session),
      serializer: { stringify: (session) => this.stringify(session), parse: (raw) => this.parse(raw) },
    });
  }

  override get(sid: string, callback: Callback<SessionData | null>): void {
    void this.sessions.get(sid, callback);
  }

  async create(sid: string, session: SessionData): Promise<void> {
    await this.sessions.set(sid, session);
  }

  override set(sid: string, session: SessionData, callback?: Callback): void {
    const ttl = this.ttl(session);
    if (ttl <= 0) return this.destroy(sid, callback);
    this.redis
      .set(this.key(sid), this.stringify(session), {
        expiration: { type: 'EX', value: ttl },
        condition: 'XX',
      })
      .then(
        () => callback?.(),
        (error: unknown) => callback?.(error),
      );
  }

  override destroy(sid: string, callback?: Callback): void {
    void this.sessions.destroy(sid, callback);
  }

  async remove(sid: string): Promise<boolean> {
    return (await this.redis.del(this.key(sid))) > 0;
  }

  close(): void {}

  private key(sid: string): string {
    return this.sessions.prefix + sid;
  }

  private ttl(session: SessionData): number {
    return storeTtlSeconds(session, this.limits, Date.now());
  }

  /**
   * A positional JSON array, without field names, and with only the cookie's expiry: its other attributes
   * (and its max age) come from the configuration and are restored on load, so a cookie re-sent after an
   * activity update keeps them and a changed setting applies to existing sessions. About 200 bytes of value
   * instead of 344 as named JSON, which keeps a session's Redis footprint under 400 bytes; `redis-cli`
   * still shows it as readable JSON. Sessions stored in the earlier named form load.
   */
  private stringify({ cookie, ...data }: SessionData): string {
    return JSON.stringify([
      data.userId,
      data.publicId,
      data.authAt,
      data.createdAt,
      data.lastSeenAt,
      data.csrfToken,
      data.userAgent ?? null,
      data.ip ?? null,
      cookie.expires ? new Date(cookie.expires).getTime() : null,
      data.mfa === true ? 1 : 0,
    ] satisfies StoredSession);
  }

  private parse(raw: string): SessionData {
    const stored = JSON.parse(raw) as StoredSession | SessionData;
    if (!Array.isArray(stored)) return { ...stored, cookie: { ...this.cookieAttributes, ...stored.cookie } };
    const [userId, publicId, authAt, createdAt, lastSeenAt, csrfToken, userAgent, ip, expires, mfa] = stored;
    return {
      userId,
      publicId,
      authAt,
      createdAt,
      lastSeenAt,
      csrfToken,
      mfa: mfa === 1,
      ...(userAgent === null ? {} : { userAgent }),
      ...(ip === null ? {} : { ip }),
      cookie: {
        ...this.cookieAttributes,
        originalMaxAge: this.limits.absoluteTtlSeconds * 1000,
        expires: expires === null ? undefined : new Date(expires),
      },
    };
  }
}
