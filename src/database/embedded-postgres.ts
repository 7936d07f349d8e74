import { PGlite } from '@electric-sql/pglite';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EmbeddedServer } from './embedded-server';

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

/**
 * Serves a PGlite database kept under `dataDir` on a private Unix socket, so the service talks to it with
 * the same `pg` driver, pool and SQL as to a real PostgreSQL. PGlite is one session: `EmbeddedServer`
 * lends it to one connection at a time, for a whole query or transaction.
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  const directory = resolve(dataDir, 'pgdata');
  mkdirSync(directory, { recursive: true });
  const db = await PGlite.create(directory);
  // Unix socket paths are limited to about 100 bytes, so the socket lives in a short temporary folder.
  const socketDir = mkdtempSync(join(tmpdir(), 'pgl-'));
  const server = new EmbeddedServer(db);
  await server.listen(join(socketDir, '.s.PGSQL.5432'));
  return {
    url: `postgresql://postgres@localhost/postgres?host=${encodeURIComponent(socketDir)}`,
    async stop() {
      await server.close();
      await db.close();
      rmSync(socketDir, { recursive: true, force: true });
    },
  };
}
