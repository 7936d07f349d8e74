import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationShutdown,
  OnModuleInit,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type {
  DataSource,
  EntityManager,
  EntitySubscriberInterface,
  QueryRunner,
  TransactionCommitEvent,
  TransactionRollbackEvent,
} from 'typeorm';
import { MetricsService } from '../metrics/metrics.service';
import { RevocationBus } from './revocation-bus';
import { EVERY_KEY, RevocationCache } from './revocation-cache';

/** Enough for every user and family active within an access token's lifetime on a busy instance. */
const MAX_ENTRIES = 50_000;
const RETRY_MS = 500;
const PENDING = Symbol('revocation keys changed in this transaction');

type RunnerData = { [PENDING]?: Set<string> };

/**
 * The revocation state that every authenticated request checks (user stamps and role, family revocation),
 * kept in memory and exact across instances: owners of that state read it through `read` and report
 * every write through `changed`, which makes every instance forget it once the write is committed.
 */
@Injectable()
export class Revocations
  implements EntitySubscriberInterface, OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly logger = new Logger('Revocations');
  private readonly cache: RevocationCache;
  private readonly unpublished = new Set<string>();
  private retryTimer?: NodeJS.Timeout;

  constructor(
    private readonly bus: RevocationBus,
    @InjectDataSource() dataSource: DataSource,
    metrics: MetricsService,
  ) {
    this.cache = new RevocationCache(MAX_ENTRIES, (result) => metrics.revocationLookups.inc({ result }));
    dataSource.subscribers.push(this);
  }

  onModuleInit(): void {
    this.bus.start({
      changed: (keys) => this.cache.forget(keys),
      lost: () => this.cache.distrust(),
      resumed: () => this.cache.trust(),
    });
  }

  /** While the last requests drain, Redis and the database are still open to say goodbye. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.bus.leave();
  }

  async onApplicationShutdown(): Promise<void> {
    clearTimeout(this.retryTimer);
    await this.bus.stop();
  }

  /** Whether reads are served from memory (invalidations are known to arrive). */
  get isTrusted(): boolean {
    return this.cache.isTrusted;
  }

  /** The state under `key`, from memory while trusted, else (and on a miss) from `load`. */
  read<T>(key: string, load: () => Promise<T>): Promise<T> {
    return this.cache.read(key, load);
  }

  /**
   * Reports that the state under `keys` was just written with `manager`. Inside a transaction every instance
   * forgets them once it commits (nothing if it rolls back); outside one, at once.
   */
  async changed(manager: EntityManager, keys: readonly string[]): Promise<void> {
    const runner = manager.queryRunner;
    if (runner?.isTransactionActive) {
      const data = runner.data as RunnerData;
      data[PENDING] ??= new Set();
      for (const key of keys) data[PENDING].add(key);
      return;
    }
    await this.announce(keys);
  }

  async afterTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    // A released savepoint is not a commit; the outermost transaction's commit announces.
    if (event.queryRunner.isTransactionActive) return;
    const keys = takePending(event.queryRunner);
    if (keys.length > 0) await this.announce(keys);
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    if (!event.queryRunner.isTransactionActive) takePending(event.queryRunner);
  }

  private async announce(keys: readonly string[]): Promise<void> {
    // Forgotten here before other instances hear of it, so this instance's next request is exact too.
    this.cache.forget(keys);
    try {
      await this.bus.publish(keys);
    } catch (error) {
      // The write is committed and in force wherever the cache is cold or distrusted; keep trying the rest.
      this.logger.error({ err: error, keys }, 'revocation not yet published; retrying');
      for (const key of keys) this.unpublished.add(key);
      this.retryLater();
    }
  }

  private retryLater(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const keys = this.unpublished.size > 1000 ? [EVERY_KEY] : [...this.unpublished];
      this.unpublished.clear();
      this.bus.publish(keys).then(
        () => this.logger.log('revocation published after retry'),
        () => {
          for (const key of keys) this.unpublished.add(key);
          this.retryLater();
        },
      );
    }, RETRY_MS);
    this.retryTimer.unref();
  }
}

function takePending(runner: QueryRunner): string[] {
  const data = runner.data as RunnerData;
  const keys = [...(data[PENDING] ?? [])];
  delete data[PENDING];
  return keys;
}
