import type { SessionData } from 'express-session';
import type { DataSource } from 'typeorm';
import { SessionLimits, storeTtlSeconds } from './session-lifetime';
import { SessionStore } from './session.store';

type Callback<T = void> = (error?: unknown, result?: T) => void;

const PRUNE_INTERVAL_MS = 5 * 60_000;

/** Sessions in the `sessions` table when no Redis is configured; expired rows are pruned in the background. */
export class DatabaseSessionStore extends SessionStore {
  private readonly pruneTimer: NodeJS.Timeout;

  constructor(
    private readonly dataSource: DataSource,
    private readonly limits: SessionLimits,
  ) {
    super();
    this.pruneTimer = setInterval(() => void this.prune(), PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
  }

  override get(sid: string, callback: Callback<SessionData | null>): void {
    this.dataSource
      .query<{ data: SessionData }[]>('SELECT data FROM sessions WHERE sid = $1 AND expires_at > now()', [
        sid,
      ])
      .then((rows) => callback(undefined, rows[0]?.data ?? null), callback);
  }

  override set(sid: string, session: SessionData, callback?: Callback): void {
    const ttl = storeTtlSeconds(session, this.limits, Date.now());
    this.dataSource
      .query(
        `INSERT INTO sessions (sid, user_id, public_id, data, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
         ON CONFLICT (sid) DO UPDATE SET data = EXCLUDED.data, expires_at = EXCLUDED.expires_at`,
        [sid, session.userId ?? null, session.publicId ?? null, JSON.stringify(session), ttl],
      )
      .then(
        () => callback?.(),
        (error: unknown) => callback?.(error),
      );
  }

  override destroy(sid: string, callback?: Callback): void {
    this.dataSource.query('DELETE FROM sessions WHERE sid = $1', [sid]).then(
      () => callback?.(),
      (error: unknown) => callback?.(error),
    );
  }

  /** Live sessions of one user, for the per-user index. */
  async listForUser(userId: string): Promise<{ sid: string; data: SessionData }[]> {
    return this.dataSource.query(
      'SELECT sid, data FROM sessions WHERE user_id = $1 AND expires_at > now() ORDER BY created_at',
      [userId],
    );
  }

  async prune(): Promise<void> {
    if (!this.dataSource.isInitialized) return;
    await this.dataSource.query('DELETE FROM sessions WHERE expires_at <= now()').catch(() => undefined);
  }

  close(): void {
    clearInterval(this.pruneTimer);
  }
}
