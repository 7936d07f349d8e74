import type { SessionData } from 'express-session';
import { promisify } from 'node:util';
import type { DataSource } from 'typeorm';
import type { RedisClient } from '../redis/redis.module';
import type { SessionStore } from './session.store';

export interface IndexedSession {
  sid: string;
  data: SessionData;
}

/** Finds every live session of a user, so they can be listed and revoked together. */
export abstract class SessionIndex {
  abstract add(userId: string, publicId: string, sid: string): Promise<void>;
  /** Drops the entry only while it still names `sid`: a session given a new id meanwhile stays listed. */
  abstract remove(userId: string, publicId: string, sid: string): Promise<void>;
  abstract sessionsOf(userId: string): Promise<IndexedSession[]>;
}

export function loadSession(store: SessionStore, sid: string): Promise<SessionData | null | undefined> {
  return promisify(store.get.bind(store))(sid);
}

const REMOVE_IF_UNCHANGED = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`;

/**
 * A hash per user, publicId -> sid. Entries of sessions that expired in the store are dropped when the hash
 * is read; the hash itself expires with the newest session's absolute limit.
 */
export class RedisSessionIndex extends SessionIndex {
  constructor(
    private readonly redis: RedisClient,
    private readonly store: SessionStore,
    private readonly keyPrefix: string,
    private readonly absoluteTtlSeconds: number,
  ) {
    super();
  }

  private key(userId: string): string {
    return `${this.keyPrefix}user-sessions:{${userId}}`;
  }

  async add(userId: string, publicId: string, sid: string): Promise<void> {
    // A new session has the full absolute lifetime ahead, never less than any older one in the hash.
    await this.redis
      .multi()
      .hSet(this.key(userId), publicId, sid)
      .expire(this.key(userId), this.absoluteTtlSeconds)
      .exec();
  }

  async remove(userId: string, publicId: string, sid: string): Promise<void> {
    await this.redis.eval(REMOVE_IF_UNCHANGED, { keys: [this.key(userId)], arguments: [publicId, sid] });
  }

  async sessionsOf(userId: string): Promise<IndexedSession[]> {
    const entries = await this.redis.hGetAll(this.key(userId));
    const live: IndexedSession[] = [];
    for (const [publicId, sid] of Object.entries(entries)) {
      const data = await loadSession(this.store, sid);
      if (data?.userId === userId && data.publicId === publicId) live.push({ sid, data });
      else await this.remove(userId, publicId, sid);
    }
    return live;
  }
}

/** The sessions table is its own index: rows carry user_id. */
export class DatabaseSessionIndex extends SessionIndex {
  constructor(private readonly dataSource: DataSource) {
    super();
  }

  async add(): Promise<void> {}

  async remove(): Promise<void> {}

  sessionsOf(userId: string): Promise<IndexedSession[]> {
    return this.dataSource.query(
      'SELECT sid, data FROM sessions WHERE user_id = $1 AND expires_at > now() ORDER BY created_at',
      [userId],
    );
  }
}
