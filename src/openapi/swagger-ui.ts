import type { INestApplication } from '@nestjs/common';
import { type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Beside this file in src/ and, copied by `npm run build`, in dist/: the same relative path serves the
 * tests, `npm start` and the container.
 */
export const SWAGGER_AUTH_SCRIPT = join(__dirname, 'browser', 'swagger-auth.js');

/** What the page at /docs defines as `window.swaggerAuth` (see browser/swagger-auth.js). */
interface SwaggerAuthPage {
  swaggerAuth: { request(request: object): Promise<object>; response(response: object): object };
}

/**
 * Swagger UI at /docs and the document at /docs-json. Swagger UI is usable for both methods as a frontend
 * would use them: cookies go with every call, the CSRF token is kept and sent on unsafe calls, and a
 * pasted bearer token survives a reload. Every script the page runs is a file of this origin, so the CSP
 * needs no inline script.
 */
export function serveSwaggerUi(app: INestApplication, document: OpenAPIObject): void {
  // Read at start, so that a build that lost the file refuses to start instead of serving a page that
  // fails every cookie-authenticated unsafe call.
  const script = readFileSync(SWAGGER_AUTH_SCRIPT, 'utf8');
  app.getHttpAdapter().get('/docs/swagger-auth.js', (_request: Request, response: Response) => {
    response.type('text/javascript').send(script);
  });
  SwaggerModule.setup('docs', app, document, {
    jsonDocumentUrl: 'docs-json',
    raw: ['json'],
    customJs: '/docs/swagger-auth.js',
    swaggerOptions: {
      withCredentials: true,
      persistAuthorization: true,
      // Nest writes these into /docs/swagger-ui-init.js as source: they run in the page, where they can
      // only reach what the script above defined.
      requestInterceptor: (request: object) =>
        (globalThis as unknown as SwaggerAuthPage).swaggerAuth.request(request),
      responseInterceptor: (response: object) =>
        (globalThis as unknown as SwaggerAuthPage).swaggerAuth.response(response),
    },
  });
}
