import { Global, Inject, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { createClient, createCluster, createSentinel } from 'redis';
import { APP_CONFIG, AppConfig, RedisConfig } from '../config/app-config';
import { RedisLiveness } from './redis-liveness';

export type RedisClient = ReturnType<typeof createClient>;

/** The DI token of the shared Redis client; `null` when no Redis is configured (the database stands in). */
export const REDIS = Symbol('REDIS');

const reconnectStrategy = (retries: number): number => Math.min(100 * 2 ** retries, 2000);

/**
 * One client for a Redis server, a Sentinel group or a Cluster. Commands fail at once while disconnected
 * (no offline queue): callers answer 503 or fall back to the database instead of hanging. A connection
 * name (CLIENT SETNAME, sent again on every reconnect) lets operators tell the connections apart.
 */
export function createRedisClient(config: RedisConfig, connectionName?: string): RedisClient {
  const options = {
    socket: { reconnectStrategy, connectTimeout: 2000 },
    disableOfflineQueue: true,
    ...(connectionName ? { name: connectionName } : {}),
  };
  if (config.clusterNodes) {
    return createCluster({
      rootNodes: config.clusterNodes.map((url) => ({ url })),
      defaults: options,
    }) as unknown as RedisClient;
  }
  if (config.sentinels) {
    return createSentinel({
      name: config.sentinelName!,
      sentinelRootNodes: config.sentinels,
      nodeClientOptions: options,
    }) as unknown as RedisClient;
  }
  return createClient({ url: config.url, ...options });
}

@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): RedisClient | null => {
        if (!config.redis) return null;
        const client = createRedisClient(config.redis);
        const logger = new Logger('Redis');
        let healthy = true;
        client.on('error', (error: Error) => {
          if (healthy) logger.warn(`redis error: ${error.message}`);
          healthy = false;
        });
        client.on('ready', () => {
          if (!healthy) logger.log('redis connection restored');
          healthy = true;
        });
        // Connecting in the background lets the service start while Redis is down; it reconnects by itself.
        client.connect().catch((error: Error) => logger.warn(`redis connect failed: ${error.message}`));
        return client;
      },
    },
    {
      provide: RedisLiveness,
      inject: [REDIS],
      useFactory: (client: RedisClient | null): RedisLiveness | null => {
        if (!client) return null;
        const liveness = new RedisLiveness(client, new Logger('Redis'));
        liveness.start();
        return liveness;
      },
    },
  ],
  exports: [REDIS],
})
export class RedisModule implements OnApplicationShutdown {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient | null,
    @Inject(RedisLiveness) private readonly liveness: RedisLiveness | null,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    this.liveness?.stop();
    if (this.redis?.isOpen) await this.redis.close().catch(() => undefined);
  }
}
