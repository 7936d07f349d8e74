import type { RedisConfig } from '../config/app-config';
import { createRedisClient, RedisClient } from '../redis/redis.module';
import { MessageBus } from './revocation-bus';

/**
 * Invalidations over Redis pub/sub: published on the shared client, received on a connection of this
 * instance's own (a subscribed connection can run no other command).
 */
export class RedisRevocationBus extends MessageBus {
  private readonly channel: string;
  private readonly subscriber: RedisClient;
  private subscription?: Promise<void>;
  private readonly onMessage = (message: string): void => this.receive(message);

  constructor(
    private readonly redis: RedisClient,
    config: RedisConfig,
  ) {
    super(`${config.keyPrefix}revocations`);
    this.channel = `${config.keyPrefix}revocations`;
    this.subscriber = createRedisClient(config, this.connectionName);
  }

  protected async send(payload: string): Promise<void> {
    await this.redis.publish(this.channel, payload);
  }

  protected open(): void {
    this.subscriber
      .on('error', (error: Error) => this.broken(error.message))
      .on('end', () => this.broken('connection ended'))
      .on('reconnecting', () => this.broken('reconnecting'))
      // node-redis subscribes again before 'ready' on a reconnect; the probe then confirms it end to end.
      .on('ready', () => void this.listen());
    this.subscriber.connect().then(
      () => this.listen(),
      (error: Error) => this.logger.warn(`revocation subscription failed: ${error.message}`),
    );
  }

  private async listen(): Promise<void> {
    try {
      this.subscription ??= this.subscriber.subscribe(this.channel, this.onMessage);
      await this.subscription;
      this.subscribed();
    } catch {
      this.subscription = undefined;
      this.broken();
    }
  }

  protected redial(): void {
    // A cluster client has no isReady; one that is not ready is already dialling by itself.
    if (!this.subscriber.isOpen || (this.subscriber as { isReady?: boolean }).isReady === false) return;
    this.subscription = undefined;
    void Promise.resolve(this.subscriber.destroy()).then(() =>
      this.subscriber.connect().then(
        () => this.listen(),
        (error: Error) => this.logger.warn(`revocation subscription failed: ${error.message}`),
      ),
    );
  }

  protected async close(): Promise<void> {
    if (this.subscriber.isOpen) await this.subscriber.close().catch(() => undefined);
  }
}
