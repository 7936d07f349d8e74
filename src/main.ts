import { Logger } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createApp } from './app.factory';
import { hardenServer } from './common/platform';
import { ConfigError, loadConfig } from './config/load-config';

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const app = await createApp(config);
  const server = app.getHttpServer() as Server;
  hardenServer(server);
  await app.listen(config.http.port, config.http.host);
  const { address, port } = server.address() as AddressInfo;
  Logger.log(`listening on http://${address}:${port}`, 'Bootstrap');
}

bootstrap().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
