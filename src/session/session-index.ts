import type { SessionData } from 'express-session';
import { promisify } from 'node:util';
import type { RedisClient } from '../redis/redis.module';
import { DatabaseSessionStore } from './database-session.store';
import type { SessionStore } from './session.store';

export interface IndexedSession {
  sid: string;
  data: SessionData;
}

/** Finds every live session of a user, so they can be listed and revoked together. */
export abstract class SessionIndex {
  abstract add(userId: string, publicId: string, sid: string): Promise<void>;
  abstract remove(userId: string, publicId: string): Promise<void>;
  abstract sessionsOf(userId: string): Promise<IndexedSession[]>;
}

export function loadSession(store: SessionStore, sid: string): Promise<SessionData | null | undefined> {
  return promisify(store.get.bind(store))(sid);
}

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

  async remove(userId: string, publicId: string): Promise<void> {
    await this.redis.hDel(this.key(userId), publicId);
  }

  async sessionsOf(userId: string): Promise<IndexedSession[]> {
    const entries = await this.redis.hGetAll(this.key(userId));
    const live: IndexedSession[] = [];
    const stale: string[] = [];
    for (const [publicId, sid] of Object.entries(entries)) {
      const data = await loadSession(this.store, sid);
      if (data?.userId === userId && data.publicId === publicId) live.push({ sid, data });
      else stale.push(publicId);
    }
    if (stale.length > 0) await this.redis.hDel(this.key(userId), stale);
    return live;
  }
}

/** The sessions table is its own index: rows carry user_id. */
export class DatabaseSessionIndex extends SessionIndex {
  constructor(private readonly store: DatabaseSessionStore) {
    super();
  }

  async add(): Promise<void> {}

  async remove(): Promise<void> {}

  sessionsOf(userId: string): Promise<IndexedSession[]> {
    return this.store.listForUser(userId);
  }
}
