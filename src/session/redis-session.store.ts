import type { CookieOptions } from 'express';
import type { SessionData } from 'express-session';
import type { RedisClient } from '../redis/redis.module';
import { SessionLimits, storeTtlSeconds } from './session-lifetime';
import { SessionStore } from './session.store';

type Callback<T = void> = (error?: unknown, result?: T) => void;

/**
 * Sessions as Redis strings under `<prefix>sess:<sid>`, each expiring when the session would end on the
 * server. Writes at the end of a request use SET … XX, so they update a live key and never recreate one
 * that a logout or revocation deleted meanwhile.
 */
export class RedisSessionStore extends SessionStore {
  private readonly prefix: string;

  constructor(
    private readonly redis: RedisClient,
    keyPrefix: string,
    private readonly limits: SessionLimits,
    private readonly cookieAttributes: CookieOptions,
  ) {
    super();
    this.prefix = `${keyPrefix}sess:`;
  }

  override get(sid: string, callback: Callback<SessionData | null>): void {
    this.redis.get(this.key(sid)).then(
      (raw) => callback(undefined, raw === null ? null : this.parse(raw)),
      (error: unknown) => callback(error),
    );
  }

  async create(sid: string, session: SessionData): Promise<void> {
    await this.redis.set(this.key(sid), this.stringify(session), {
      expiration: { type: 'EX', value: this.ttl(session) },
    });
  }

  override set(sid: string, session: SessionData, callback?: Callback): void {
    this.redis
      .set(this.key(sid), this.stringify(session), {
        expiration: { type: 'EX', value: this.ttl(session) },
        condition: 'XX',
      })
      .then(
        () => callback?.(),
        (error: unknown) => callback?.(error),
      );
  }

  override destroy(sid: string, callback?: Callback): void {
    this.remove(sid).then(
      () => callback?.(),
      (error: unknown) => callback?.(error),
    );
  }

  async remove(sid: string): Promise<boolean> {
    return (await this.redis.del(this.key(sid))) > 0;
  }

  close(): void {}

  private key(sid: string): string {
    return this.prefix + sid;
  }

  private ttl(session: SessionData): number {
    return storeTtlSeconds(session, this.limits, Date.now());
  }

  /**
   * Keeps only the cookie's expiry with each session: its other attributes come from the configuration and
   * are restored on load, so a cookie re-sent after an activity update keeps them (and a changed setting
   * applies to existing sessions too). Saves about 60 bytes of each stored session.
   */
  private stringify({ cookie, ...data }: SessionData): string {
    return JSON.stringify({
      ...data,
      cookie: { originalMaxAge: cookie.originalMaxAge, expires: cookie.expires },
    });
  }

  private parse(raw: string): SessionData {
    const stored = JSON.parse(raw) as SessionData;
    return { ...stored, cookie: { ...this.cookieAttributes, ...stored.cookie } };
  }
}
