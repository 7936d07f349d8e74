import { Inject, MiddlewareConsumer, Module, NestModule, OnModuleDestroy } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { RedisStore } from 'connect-redis';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import session, { SessionData } from 'express-session';
import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { REDIS, RedisClient } from '../redis/redis.module';
import { UsersModule } from '../users/users.module';
import { DatabaseSessionStore } from './database-session.store';
import { hasSessionCookie, sessionCookieName, sessionCookieOptions } from './session-cookie';
import { DatabaseSessionIndex, RedisSessionIndex, SessionIndex } from './session-index';
import { storeTtlSeconds } from './session-lifetime';
import { loadOrCreateSessionSecret } from './session-secret';
import { SessionAuthenticator } from './session.authenticator';
import { SessionGuard } from './session.guard';
import { SESSION_MIDDLEWARE, SessionService } from './session.service';
import { SessionStore } from './session.store';
import { TrustedOriginGuard } from './trusted-origin.guard';

function createSessionStore(
  config: AppConfig,
  redis: RedisClient | null,
  dataSource: DataSource,
): SessionStore {
  if (!redis) return new DatabaseSessionStore(dataSource, config.session);
  // disableTouch: a request that changes nothing must not write; lastSeenAt writes are throttled instead.
  return new RedisStore({
    client: redis,
    prefix: `${config.redis!.keyPrefix}sess:`,
    disableTouch: true,
    ttl: (data) => storeTtlSeconds(data, config.session, Date.now()),
    serializer: compactSerializer(config),
  });
}

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
];

/**
 * Sessions are stored as a positional JSON array, without field names, and with only the cookie's expiry:
 * its other attributes (and its max age) come from the configuration and are restored on load, so a
 * cookie re-sent after an activity update keeps them and a changed setting applies to existing sessions.
 * About 200 bytes of value instead of 344 as named JSON, which keeps a session's Redis footprint under
 * 400 bytes; `redis-cli` still shows it as readable JSON. Sessions stored in the earlier named form load.
 */
function compactSerializer(config: AppConfig) {
  const attributes = sessionCookieOptions(config);
  const originalMaxAge = config.session.absoluteTtlSeconds * 1000;
  return {
    stringify: ({ cookie, ...data }: SessionData): string =>
      JSON.stringify([
        data.userId,
        data.publicId,
        data.authAt,
        data.createdAt,
        data.lastSeenAt,
        data.csrfToken,
        data.userAgent ?? null,
        data.ip ?? null,
        cookie.expires ? new Date(cookie.expires).getTime() : null,
      ] satisfies StoredSession),
    parse: (raw: string): SessionData => {
      const stored = JSON.parse(raw) as StoredSession | SessionData;
      if (!Array.isArray(stored)) return { ...stored, cookie: { ...attributes, ...stored.cookie } };
      const [userId, publicId, authAt, createdAt, lastSeenAt, csrfToken, userAgent, ip, expires] = stored;
      return {
        userId,
        publicId,
        authAt,
        createdAt,
        lastSeenAt,
        csrfToken,
        ...(userAgent === null ? {} : { userAgent }),
        ...(ip === null ? {} : { ip }),
        cookie: { ...attributes, originalMaxAge, expires: expires === null ? undefined : new Date(expires) },
      };
    },
  };
}

function createSessionIndex(config: AppConfig, redis: RedisClient | null, store: SessionStore): SessionIndex {
  if (!redis) return new DatabaseSessionIndex(store as DatabaseSessionStore);
  return new RedisSessionIndex(redis, store, config.redis!.keyPrefix, config.session.absoluteTtlSeconds);
}

async function createSessionMiddleware(
  config: AppConfig,
  store: SessionStore,
  dataSource: DataSource,
): Promise<RequestHandler> {
  return session({
    name: sessionCookieName(config),
    secret: config.session.secret ?? (await loadOrCreateSessionSecret(dataSource)),
    store,
    genid: () => randomBytes(24).toString('base64url'),
    cookie: { ...sessionCookieOptions(config), maxAge: config.session.absoluteTtlSeconds * 1000 },
    saveUninitialized: false,
    resave: false,
    rolling: false,
    // 'destroy' would also delete the session when loading it failed (store error leaves req.session unset),
    // logging users out on a store blip; sessions are only ever ended explicitly through SessionService.
    unset: 'keep',
  });
}

/**
 * Cookie sessions, in Redis when configured, else in the database; never in memory. Loaded for requests
 * that carry the session cookie; a login without one gets its session from SessionService.start.
 */
@Module({
  imports: [UsersModule],
  providers: [
    {
      provide: SessionStore,
      inject: [APP_CONFIG, REDIS, getDataSourceToken()],
      useFactory: createSessionStore,
    },
    {
      provide: SessionIndex,
      inject: [APP_CONFIG, REDIS, SessionStore],
      useFactory: createSessionIndex,
    },
    {
      provide: SESSION_MIDDLEWARE,
      inject: [APP_CONFIG, SessionStore, getDataSourceToken()],
      useFactory: createSessionMiddleware,
    },
    SessionService,
    SessionAuthenticator,
    SessionGuard,
    TrustedOriginGuard,
  ],
  exports: [SessionService, SessionAuthenticator, SessionGuard, TrustedOriginGuard],
})
export class SessionModule implements NestModule, OnModuleDestroy {
  constructor(
    @Inject(SESSION_MIDDLEWARE) private readonly middleware: RequestHandler,
    private readonly store: SessionStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  configure(consumer: MiddlewareConsumer): void {
    const name = sessionCookieName(this.config);
    // Without a cookie express-session would build an empty session with a fresh random id on every bearer
    // call and health probe, only to drop it (saveUninitialized: false): most of what /health/live cost.
    consumer
      .apply((request: Request, response: Response, next: NextFunction) =>
        hasSessionCookie(request, name) ? this.middleware(request, response, next) : next(),
      )
      .forRoutes('*path');
  }

  onModuleDestroy(): void {
    if (this.store instanceof DatabaseSessionStore) this.store.close();
  }
}
