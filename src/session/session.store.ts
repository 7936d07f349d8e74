import { Store } from 'express-session';

/**
 * The DI token of the session store: connect-redis on the shared Redis client, or DatabaseSessionStore.
 * Both speak express-session's callback API; `touch` is never implemented, so a request that changes
 * nothing writes nothing.
 */
export abstract class SessionStore extends Store {}
