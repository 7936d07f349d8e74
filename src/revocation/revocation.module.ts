import { Module } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { REDIS, RedisClient } from '../redis/redis.module';
import { PostgresRevocationBus } from './postgres-revocation.bus';
import { RedisRevocationBus } from './redis-revocation.bus';
import { LocalRevocationBus, RevocationBus } from './revocation-bus';
import { Revocations } from './revocations';

/**
 * Redis when configured; else PostgreSQL LISTEN/NOTIFY, since several instances may share a database
 * server; the embedded database has one process, which needs no messages at all.
 */
export function createRevocationBus(
  config: AppConfig,
  redis: RedisClient | null,
  dataSource: DataSource,
): RevocationBus {
  if (redis && config.redis) return new RedisRevocationBus(redis, config.redis);
  if (config.database.url) return new PostgresRevocationBus(config.database.url, dataSource);
  return new LocalRevocationBus();
}

/** Below users, session and token: the users and token modules read and invalidate through it. */
@Module({
  providers: [
    {
      provide: RevocationBus,
      inject: [APP_CONFIG, REDIS, getDataSourceToken()],
      useFactory: createRevocationBus,
    },
    Revocations,
  ],
  exports: [Revocations],
})
export class RevocationModule {}
