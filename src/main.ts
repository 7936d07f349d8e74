import { Logger } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { hardenServer } from './common/platform';
import { ConfigError, loadConfig } from './config/load-config';
import { assertDatabaseReachable, DatabaseStartError } from './database/database-reachable';

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  if (config.database.url) await assertDatabaseReachable(config.database.url);
  // Loaded after the check: Nest and every module take seconds to load, which an operator waiting for
  // "cannot reach the database" should not have to sit through.
  const { createApp } = await import('./app.factory.js');
  const app = await createApp(config);
  const server = app.getHttpServer() as Server;
  hardenServer(server);
  await app.listen(config.http.port, config.http.host);
  const { address, port } = server.address() as AddressInfo;
  Logger.log(`listening on http://${address}:${port}`, 'Bootstrap');
}

bootstrap().catch((error: unknown) => {
  // A bad setting or an unusable database is the operator's to fix: one line, no stack trace.
  const expected = error instanceof ConfigError || error instanceof DatabaseStartError;
  console.error(expected ? error.message : error);
  process.exit(1);
});
