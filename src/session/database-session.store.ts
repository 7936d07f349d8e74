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

  async create(sid: string, session: SessionData): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO sessions (sid, user_id, public_id, data, expires_at)
       VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))`,
      [sid, session.userId, session.publicId, JSON.stringify(session), this.ttl(session)],
    );
  }

  /** An update of a live row only: a row deleted (or expired) while the request ran stays gone. */
  override set(sid: string, session: SessionData, callback?: Callback): void {
    this.dataSource
      .query(
        `UPDATE sessions SET data = $2, expires_at = now() + make_interval(secs => $3)
         WHERE sid = $1 AND expires_at > now()`,
        [sid, JSON.stringify(session), this.ttl(session)],
      )
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
    const rows = await this.dataSource.query<{ removed: number }[]>(
      'WITH gone AS (DELETE FROM sessions WHERE sid = $1 RETURNING 1) SELECT count(*)::int AS removed FROM gone',
      [sid],
    );
    return rows[0].removed > 0;
  }

  async prune(): Promise<void> {
    if (!this.dataSource.isInitialized) return;
    await this.dataSource.query('DELETE FROM sessions WHERE expires_at <= now()').catch(() => undefined);
  }

  close(): void {
    clearInterval(this.pruneTimer);
  }

  private ttl(session: SessionData): number {
    return storeTtlSeconds(session, this.limits, Date.now());
  }
}
