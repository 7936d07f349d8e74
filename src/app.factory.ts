import type { DynamicModule, INestApplication, LoggerService, NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AppModule } from './app.module';
import { REFRESH_COOKIE_SECURITY } from './auth/token-auth.controller';
import { createRootLogger, PinoNestLogger } from './common/logger';
import { applyPlatform } from './common/platform';
import type { AppConfig } from './config/app-config';

export const SESSION_SECURITY = 'session';
export const BEARER_SECURITY = 'bearer';

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
  setUpOpenApi(app, config);
  return app;
}

function setUpOpenApi(app: INestApplication, config: AppConfig): void {
  const cookieName = config.session.cookieSecure ? '__Host-sid' : 'sid';
  const refreshCookie = config.session.cookieSecure ? '__Secure-rt' : 'rt';
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Authentication service')
      .setDescription('Cookie sessions and JWT access tokens over one user registry. Errors share one shape.')
      .setVersion('1.0')
      .addCookieAuth(cookieName, { type: 'apiKey', in: 'cookie', name: cookieName }, SESSION_SECURITY)
      .addCookieAuth(
        refreshCookie,
        { type: 'apiKey', in: 'cookie', name: refreshCookie },
        REFRESH_COOKIE_SECURITY,
      )
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, BEARER_SECURITY)
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json', raw: ['json'] });
}
