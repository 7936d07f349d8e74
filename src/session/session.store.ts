import type { SessionData } from 'express-session';
import { Store } from 'express-session';

/**
 * The DI token of the session store: RedisSessionStore on the shared Redis client, or DatabaseSessionStore.
 *
 * A session comes into existence only through `create`, called by SessionService when it logs a user in or
 * gives a session a new id. `set` is what express-session calls when a request that changed its session
 * ends, possibly long after the session was logged out, revoked or replaced by another request: it only
 * updates a session that still exists, so nothing brings a destroyed session back. `touch` is never
 * implemented, so a request that changes nothing writes nothing.
 */
export abstract class SessionStore extends Store {
  /** Stores a new session under a fresh id. */
  abstract create(sid: string, session: SessionData): Promise<void>;

  /** Removes a session; true only for the call that removed it, so two enders can tell who won. */
  abstract remove(sid: string): Promise<boolean>;

  /** Stops background work; the connections themselves belong to the database and Redis modules. */
  abstract close(): void;
}
