import { Inject, MiddlewareConsumer, Module, NestModule, OnModuleDestroy } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import session from 'express-session';
import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { REDIS, RedisClient } from '../redis/redis.module';
import { UsersModule } from '../users/users.module';
import { DatabaseSessionStore } from './database-session.store';
import { hasSessionCookie, sessionCookieName, sessionCookieOptions } from './session-cookie';
import { DatabaseSessionIndex, RedisSessionIndex, SessionIndex } from './session-index';
import { RedisSessionStore } from './redis-session.store';
import { loadOrCreateSessionSecret } from './session-secret';
import { SessionAuthenticator } from './session.authenticator';
import { SessionGuard } from './session.guard';
import { SESSION_MIDDLEWARE, SessionService } from './session.service';
import { SessionStore } from './session.store';
import { TrustedOriginGuard } from './trusted-origin.guard';

const SESSION_BACKEND = Symbol('SESSION_BACKEND');

/** Where sessions live and how a user's sessions are found: one choice, made here for both. */
interface SessionBackend {
  store: SessionStore;
  index: SessionIndex;
}

/** Redis when configured, else the database; never memory. */
function createSessionBackend(
  config: AppConfig,
  redis: RedisClient | null,
  dataSource: DataSource,
): SessionBackend {
  if (redis && config.redis) {
    const store = new RedisSessionStore(
      redis,
      config.redis.keyPrefix,
      config.session,
      sessionCookieOptions(config),
    );
    return {
      store,
      index: new RedisSessionIndex(redis, store, config.redis.keyPrefix, config.session.absoluteTtlSeconds),
    };
  }
  return {
    store: new DatabaseSessionStore(dataSource, config.session),
    index: new DatabaseSessionIndex(dataSource),
  };
}

async function createSessionMiddleware(
  config: AppConfig,
  store: SessionStore,
  dataSource: DataSource,
): Promise<RequestHandler> {
  const middleware = session({
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
  if (!config.session.cookieSecure) return middleware;
  // COOKIE_SECURE=true declares that clients reach the service over HTTPS, usually through a proxy that
  // ends TLS. express-session asks req.secure before setting a Secure cookie and silently sets none on a
  // plain-HTTP last hop, so a login would answer 200 without its cookie: the declaration is taken as given.
  return (request, response, next) => {
    Object.defineProperty(request, 'secure', { value: true, configurable: true });
    middleware(request, response, next);
  };
}

/**
 * Cookie sessions, in Redis when configured, else in the database; never in memory. Loaded for requests
 * that carry the session cookie; a login without one gets its session from SessionService.start.
 */
@Module({
  imports: [UsersModule],
  providers: [
    {
      provide: SESSION_BACKEND,
      inject: [APP_CONFIG, REDIS, getDataSourceToken()],
      useFactory: createSessionBackend,
    },
    {
      provide: SessionStore,
      inject: [SESSION_BACKEND],
      useFactory: (backend: SessionBackend) => backend.store,
    },
    {
      provide: SessionIndex,
      inject: [SESSION_BACKEND],
      useFactory: (backend: SessionBackend) => backend.index,
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
    this.store.close();
  }
}
