import { Module } from '@nestjs/common';
import type { Pool, QueryConfig } from 'pg';
import { RateLimiterPostgres, RateLimiterRedis } from 'rate-limiter-flexible';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { REDIS, RedisClient } from '../redis/redis.module';
import { LimiterFactory, LoginThrottle, StoreLoginThrottle } from './login-throttle';

/** The table created by the CreateRateLimits migration. */
export const RATE_LIMIT_TABLE = 'rate_limits';

/** Counters in Redis when it is configured, so every instance shares them; else in PostgreSQL. */
export function createLoginThrottle(
  config: AppConfig,
  redis: RedisClient | null,
  pool: () => Pool,
): LoginThrottle {
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
    return new StoreLoginThrottle(config.auth, 'redis', limiter);
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
  return new StoreLoginThrottle(config.auth, 'database', limiter);
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

/** Imported by the modules whose use cases are limited: auth (login, register) and token (refresh). */
@Module({
  providers: [
    {
      provide: LoginThrottle,
      inject: [APP_CONFIG, REDIS, DataSource],
      useFactory: (config: AppConfig, redis: RedisClient | null, dataSource: DataSource): LoginThrottle =>
        // TypeORM's pg pool, so the limiter shares the app's connections and their timeouts.
        createLoginThrottle(config, redis, () => (dataSource.driver as PostgresDriver).master as Pool),
    },
  ],
  exports: [LoginThrottle],
})
export class RateLimitModule {}
