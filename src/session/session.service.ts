import { Inject, Injectable } from '@nestjs/common';
import type { Request, RequestHandler } from 'express';
import type { Session, SessionData } from 'express-session';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import type { ClientInfo } from '../common/client-info';
import { newCsrfToken } from '../common/csrf';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { sessionCookieName, sessionCookieOptions } from './session-cookie';
import './session-data';
import { IndexedSession, SessionIndex } from './session-index';
import { isSessionExpired, SessionExpiry, sessionExpiry, SessionLimits } from './session-lifetime';
import { SessionStore } from './session.store';

export type LiveSession = Session & Partial<SessionData>;

/** The express-session middleware; SessionModule runs it only for requests that carry a session cookie. */
export const SESSION_MIDDLEWARE = Symbol('SESSION_MIDDLEWARE');

export interface StartedSession {
  publicId: string;
  csrfToken: string;
  createdAt: Date;
  /** The absolute limit, createdAt + SESSION_ABSOLUTE_TTL, however the session is used. */
  expiresAt: Date;
  /** When the session ends if it is not used before. */
  idleExpiresAt: Date;
}

export interface SessionListing {
  id: string;
  userAgent: string | null;
  ip: string | null;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
}

const SESSION_FIELDS = [
  'userId',
  'publicId',
  'authAt',
  'createdAt',
  'lastSeenAt',
  'csrfToken',
  'mfa',
  'userAgent',
  'ip',
] as const satisfies (keyof SessionData)[];

/** Each attempt finds the session under a newer id; more rotations than this in one revocation are absurd. */
const MAX_REVOKE_ATTEMPTS = 5;

/** Starts, rotates, ends, lists and revokes cookie sessions; the one writer of session data. */
@Injectable()
export class SessionService {
  readonly limits: SessionLimits;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly store: SessionStore,
    private readonly index: SessionIndex,
    @Inject(SESSION_MIDDLEWARE) private readonly middleware: RequestHandler,
  ) {
    this.limits = config.session;
  }

  /**
   * Logs a user in on a brand-new session id, whatever id the client arrived with (fixation). The session
   * is dated (`authAt`) from when the password check began (`checkedAt`, ms), before `user` was read, so a
   * revocation written while the check ran also ends this session.
   */
  async start(
    request: Request,
    user: { id: string; revokedBefore: Date | null },
    client: ClientInfo,
    checkedAt: number,
    options: { mfa?: boolean } = {},
  ): Promise<StartedSession> {
    const previous = request.session ?? (await this.load(request));
    const replaced =
      previous.userId && previous.publicId
        ? { userId: previous.userId, publicId: previous.publicId, sid: request.sessionID }
        : undefined;
    // regenerate destroys the previous id in the store, so a pre-login id can never carry this login.
    await promisify(previous.regenerate.bind(previous))();
    if (replaced) await this.index.remove(replaced.userId, replaced.publicId, replaced.sid);
    const now = Date.now();
    const session = request.session;
    Object.assign(session, {
      userId: user.id,
      publicId: randomUUID(),
      // Dated no earlier than the user's revocation stamp, which may lie up to a second ahead.
      authAt: Math.max(checkedAt, user.revokedBefore?.getTime() ?? 0),
      createdAt: now,
      lastSeenAt: now,
      csrfToken: newCsrfToken(),
      mfa: options.mfa === true,
      userAgent: client.userAgent,
      ip: client.ip,
    } satisfies Omit<SessionData, 'cookie'>);
    await this.create(request);
    return this.describe(session as SessionData);
  }

  /**
   * A new id for the same session, for privilege changes such as a password change. The new id is stored
   * before the old one is removed, and whoever removes the old id wins: when a logout or revocation removed
   * it first, the session was ended while this request ran, so its successor is ended too and the answer is
   * false (the cookie is cleared). Nothing then outlives a revocation by moving to a new id.
   */
  async rotateId(request: Request, options: { authAt?: number } = {}): Promise<boolean> {
    const previousSid = request.sessionID;
    const kept: Partial<SessionData> = {};
    for (const field of SESSION_FIELDS) (kept as Record<string, unknown>)[field] = request.session[field];
    // A new id and an empty session on the request, the old id still in the store (regenerate would drop it).
    request.sessionStore.generate(request);
    Object.assign(request.session, kept, options.authAt === undefined ? {} : { authAt: options.authAt });
    await this.create(request);
    if (await this.store.remove(previousSid)) return true;
    await this.end(request);
    return false;
  }

  /** Logout, or an invalid session: it leaves the store and the index, and the cookie is cleared. */
  async end(request: Request): Promise<void> {
    const session = request.session as LiveSession | undefined;
    if (session) {
      const { userId, publicId } = session;
      const sid = request.sessionID;
      await promisify(session.destroy.bind(session))();
      if (userId && publicId) await this.index.remove(userId, publicId, sid);
    }
    request.res?.clearCookie(sessionCookieName(this.config), sessionCookieOptions(this.config));
  }

  /** The request's session, which SessionGuard has already checked. */
  describeCurrent(request: Request): StartedSession {
    return this.describe(request.session as SessionData);
  }

  private describe(session: SessionData): StartedSession {
    const expiry: SessionExpiry = sessionExpiry(session, this.limits);
    return {
      publicId: session.publicId,
      csrfToken: session.csrfToken,
      createdAt: new Date(session.createdAt),
      expiresAt: new Date(expiry.absoluteExpiresAt),
      idleExpiresAt: new Date(expiry.idleExpiresAt),
    };
  }

  async list(userId: string): Promise<SessionListing[]> {
    const now = Date.now();
    return (await this.liveSessionsOf(userId, now))
      .map(({ data }) => ({
        id: data.publicId,
        userAgent: data.userAgent ?? null,
        ip: data.ip ?? null,
        createdAt: new Date(data.createdAt),
        lastSeenAt: new Date(data.lastSeenAt),
        expiresAt: new Date(sessionExpiry(data, this.limits).expiresAt),
      }))
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /**
   * False when the user has no such session, so callers can answer NOT_FOUND. A session whose id rotates
   * meanwhile (a password change in flight) keeps its public id under a new sid: the removal follows it.
   */
  async revoke(userId: string, publicId: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_REVOKE_ATTEMPTS; attempt += 1) {
      const target = (await this.index.sessionsOf(userId)).find((entry) => entry.data.publicId === publicId);
      if (!target) return attempt > 0;
      const removed = await this.store.remove(target.sid);
      await this.index.remove(userId, publicId, target.sid);
      if (removed) return true;
    }
    return true;
  }

  async revokeAll(userId: string, exceptPublicId?: string): Promise<number> {
    const targets = (await this.index.sessionsOf(userId)).filter(
      (entry) => entry.data.publicId !== exceptPublicId,
    );
    for (const target of targets) {
      await this.store.remove(target.sid);
      await this.index.remove(userId, target.data.publicId, target.sid);
    }
    return targets.length;
  }

  private async liveSessionsOf(userId: string, now: number): Promise<IndexedSession[]> {
    return (await this.index.sessionsOf(userId)).filter(
      (entry) => !isSessionExpired(entry.data, this.limits, now),
    );
  }

  /** A request without a session cookie skipped express-session; a login gets its session here. */
  private async load(request: Request): Promise<Session> {
    await promisify((next: (error?: unknown) => void) => this.middleware(request, request.res!, next))();
    return request.session;
  }

  /** The one place a session comes into existence in the store. */
  private async create(request: Request): Promise<void> {
    const session = request.session as Session & SessionData;
    await this.store.create(request.sessionID, session);
    await this.index.add(session.userId, session.publicId, request.sessionID);
  }
}
