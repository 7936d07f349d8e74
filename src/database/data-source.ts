import { DataSource, DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from '../../migrations';

/**
 * Where the connection leads decides its timeouts: a server across a network can stop answering without
 * closing the connection, the embedded database on its in-process socket cannot. `migrations` leaves out
 * the per-query limits, which a long schema change may legitimately exceed.
 */
export interface ConnectionRole {
  remote: boolean;
  purpose: 'serve' | 'migrate';
  /**
   * The pool's size: the instance's DATABASE_POOL_SIZE when serving requests (a refresh holds a connection
   * for its whole transaction); two for migrations and commands, one holding the advisory lock.
   */
  poolSize?: number;
}

/**
 * Bounds on a remote server so a request fails (503) instead of hanging when PostgreSQL or the network
 * does: a lock held by a client that vanished is given up after a while, the server drops sessions left
 * idle inside a transaction, and the client stops waiting for an answer that does not come.
 */
const REMOTE_LIMITS = {
  lock_timeout: 3_000,
  idle_in_transaction_session_timeout: 10_000,
  query_timeout: 5_000,
};

export function dataSourceOptions(
  url: string,
  role: ConnectionRole = { remote: true, purpose: 'serve' },
): DataSourceOptions {
  const limits = role.remote && role.purpose === 'serve' ? REMOTE_LIMITS : {};
  return {
    type: 'postgres',
    url,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    extra: {
      max: role.poolSize ?? 2,
      connectionTimeoutMillis: 3000,
      idleTimeoutMillis: 30000,
      keepAlive: role.remote,
      ...limits,
    },
  };
}

// An arbitrary constant key: instances starting together take turns migrating.
const MIGRATION_LOCK = 7_734_102;

/** Runs pending migrations while holding a PostgreSQL advisory lock, so concurrent starts are safe. */
export async function runMigrations(dataSource: DataSource): Promise<void> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await dataSource.runMigrations({ transaction: 'each' });
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await runner.release();
  }
}
