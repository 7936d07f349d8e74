import { Logger } from '@nestjs/common';
import type { Server } from 'node:http';
import { createApp } from './app.factory';
import { hardenServer } from './common/platform';
import { ConfigError, loadConfig } from './config/load-config';

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const app = await createApp(config);
  hardenServer(app.getHttpServer() as Server);
  await app.listen(config.http.port, config.http.host);
  Logger.log(`listening on http://${config.http.host}:${config.http.port}`, 'Bootstrap');
}

bootstrap().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
