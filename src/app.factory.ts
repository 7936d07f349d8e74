import type { DynamicModule, INestApplication, LoggerService, NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { createRootLogger, PinoNestLogger } from './common/logger';
import { applyPlatform } from './common/platform';
import type { AppConfig } from './config/app-config';
import { buildApiDocument } from './openapi/api-document';
import { serveSwaggerUi } from './openapi/swagger-ui';

/**
 * Makes the Nest application from the root module: NestFactory in `main.ts`; the e2e specs go through a
 * `@nestjs/testing` module so that a spec can replace a provider. Everything after it is the same for both.
 */
export type NestAppCreator = (
  root: DynamicModule,
  options: NestApplicationOptions & { logger: LoggerService },
) => Promise<NestExpressApplication>;

const byNestFactory: NestAppCreator = (root, options) =>
  NestFactory.create<NestExpressApplication>(root, options);

/** Builds the whole application for a configuration: used by `main.ts` and by the e2e tests. */
export async function createApp(
  config: AppConfig,
  create: NestAppCreator = byNestFactory,
): Promise<INestApplication> {
  const logger = createRootLogger(config.logLevel, config.logPretty);
  const app = await create(AppModule.forRoot(config), {
    bodyParser: false,
    logger: new PinoNestLogger(logger),
    abortOnError: false,
  });
  applyPlatform(app, config, logger);
  // process.exit after the hooks, so pino flushes and the exit code says the shutdown went well.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  serveSwaggerUi(app, buildApiDocument(app, config));
  return app;
}
