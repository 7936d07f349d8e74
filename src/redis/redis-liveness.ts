import type { LoggerService } from '@nestjs/common';
import type { RedisClient } from './redis.module';

const PROBE_INTERVAL_MS = 1_000;
const PROBE_TIMEOUT_MS = 2_000;

/**
 * node-redis bounds connecting, and with no offline queue it refuses commands while disconnected, but a
 * command already written to a connection that went silent (a network partition, a frozen server) waits
 * for ever, and so would the request behind it. A PING that gets no answer in time ends such a
 * connection: the commands waiting on it fail (503) and the client dials again until Redis answers.
 */
export class RedisLiveness {
  private timer?: NodeJS.Timeout;
  private probing = false;
  private stopped = false;

  constructor(
    private readonly client: RedisClient,
    private readonly logger: LoggerService,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.probe(), PROBE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private get connected(): boolean {
    // A cluster client has no isReady of its own; isOpen is what it offers.
    const { isReady } = this.client as { isReady?: boolean };
    return this.client.isOpen && isReady !== false;
  }

  private async probe(): Promise<void> {
    if (this.probing || this.stopped || !this.connected) return;
    this.probing = true;
    let timeout: NodeJS.Timeout | undefined;
    try {
      const answered = await Promise.race([
        this.client.ping().then(
          (): boolean => true,
          (): boolean => true,
        ),
        new Promise<false>((resolve) => {
          timeout = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS);
        }),
      ]);
      if (!answered && !this.stopped && this.client.isOpen) await this.redial();
    } finally {
      clearTimeout(timeout);
      this.probing = false;
    }
  }

  private async redial(): Promise<void> {
    this.logger.warn(`redis did not answer a PING within ${PROBE_TIMEOUT_MS} ms: reconnecting`);
    await Promise.resolve(this.client.destroy());
    if (this.stopped) return;
    this.client.connect().catch((error: Error) => {
      this.logger.warn(`redis reconnect failed: ${error.message}`);
    });
  }
}
