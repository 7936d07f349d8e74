import { Module } from '@nestjs/common';
import type { Pool, QueryConfig } from 'pg';
import { RateLimiterPostgres, RateLimiterRedis } from 'rate-limiter-flexible';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { REDIS, RedisClient } from '../redis/redis.module';
import { LimiterFactory, LoginThrottle, StoreLoginThrottle } from './login-throttle';
import { MailThrottle, StoreMailThrottle } from './mail-throttle';

/** The table created by the CreateRateLimits migration. */
export const RATE_LIMIT_TABLE = 'rate_limits';

interface LimiterStore {
  limiter: LimiterFactory;
  store: 'redis' | 'database';
}

/** Counters in Redis when it is configured, so every instance shares them; else in PostgreSQL. */
export function createLoginThrottle(
  config: AppConfig,
  redis: RedisClient | null,
  pool: () => Pool,
): LoginThrottle {
  const { limiter, store } = limiterStore(config, redis, pool);
  return new StoreLoginThrottle(config.auth, store, limiter);
}

export function createMailThrottle(
  config: AppConfig,
  redis: RedisClient | null,
  pool: () => Pool,
): MailThrottle {
  const { limiter, store } = limiterStore(config, redis, pool);
  return new StoreMailThrottle(config.mail, store, limiter);
}

function limiterStore(config: AppConfig, redis: RedisClient | null, pool: () => Pool): LimiterStore {
  if (redis && config.redis) {
    const prefix = `${config.redis.keyPrefix}rl:`;
    const limiter: LimiterFactory = (name, options) =>
      new RateLimiterRedis({
        ...options,
        storeClient: redis,
        useRedisPackage: true,
        // With no offline queue a disconnected client fails at once; this only makes the failure explicit.
        rejectIfRedisNotReady: true,
        keyPrefix: `${prefix}${name}`,
      });
    return { limiter, store: 'redis' };
  }
  let sweeping = false;
  const limiter: LimiterFactory = (name, options) => {
    // Every limiter shares one table; one of them sweeping expired rows is enough.
    const clearExpiredByTimeout = !sweeping;
    sweeping = true;
    return new RateLimiterPostgres({
      ...options,
      storeClient: unnamedStatements(pool),
      storeType: 'pool',
      tableName: RATE_LIMIT_TABLE,
      tableCreated: true,
      clearExpiredByTimeout,
      keyPrefix: name,
    });
  };
  return { limiter, store: 'database' };
}

/**
 * The library names its prepared statements. The embedded PGlite serves every pool connection from one
 * backend, where a name prepared on one connection collides with the same name on the next, so statements
 * go unnamed (one extra parse per query, nothing next to a bcrypt comparison).
 */
function unnamedStatements(pool: () => Pool): Pick<Pool, 'query'> {
  return {
    query: ((query: QueryConfig) =>
      pool().query({ text: query.text, values: query.values })) as Pool['query'],
  };
}

/** TypeORM's pg pool, so the limiters share the app's connections and their timeouts. */
const poolOf = (dataSource: DataSource) => () => (dataSource.driver as PostgresDriver).master as Pool;

/** Imported by the modules whose use cases are limited: auth (login, register), token (refresh), lifecycle (mail). */
@Module({
  providers: [
    {
      provide: LoginThrottle,
      inject: [APP_CONFIG, REDIS, DataSource],
      useFactory: (config: AppConfig, redis: RedisClient | null, dataSource: DataSource): LoginThrottle =>
        createLoginThrottle(config, redis, poolOf(dataSource)),
    },
    {
      provide: MailThrottle,
      inject: [APP_CONFIG, REDIS, DataSource],
      useFactory: (config: AppConfig, redis: RedisClient | null, dataSource: DataSource): MailThrottle =>
        createMailThrottle(config, redis, poolOf(dataSource)),
    },
  ],
  exports: [LoginThrottle, MailThrottle],
})
export class RateLimitModule {}
