import type { INestApplication } from '@nestjs/common';
import {
  DocumentBuilder,
  type OpenAPIObject,
  type OperationObject,
  type ResponseObject,
  SwaggerModule,
} from '@nestjs/swagger';
import { headerRef, RESPONSE_HEADERS, SECURITY } from '../common/openapi';
import type { AppConfig } from '../config/app-config';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const UNSAFE_METHODS = new Set<string>(['post', 'put', 'patch', 'delete']);

/** The OpenAPI document served at /docs-json: what the controllers declare, and the rules every route shares. */
export function buildApiDocument(app: INestApplication, config: AppConfig): OpenAPIObject {
  const sessionCookie = config.session.cookieSecure ? '__Host-sid' : 'sid';
  const refreshCookie = config.session.cookieSecure ? '__Secure-rt' : 'rt';
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Authentication service')
      .setDescription(
        'Cookie sessions and JWT access tokens over one user registry. Errors share one shape. A request ' +
          'authenticated by a cookie (the session, or the `rt` refresh cookie) with POST, PUT, PATCH or ' +
          "DELETE also sends that credential's CSRF token in `X-CSRF-Token`; a bearer token needs none.",
      )
      .setVersion('1.0')
      // Relative: the document describes whichever origin serves it, and stays the same file everywhere.
      .addServer('/', 'The origin that serves this document')
      .addCookieAuth(sessionCookie, { type: 'apiKey', in: 'cookie', name: sessionCookie }, SECURITY.session)
      .addCookieAuth(
        refreshCookie,
        {
          type: 'apiKey',
          in: 'cookie',
          name: refreshCookie,
          description: 'The refresh token, when a token login asked for `refreshTokenInCookie`',
        },
        SECURITY.refreshCookie,
      )
      .addApiKey(
        {
          type: 'apiKey',
          in: 'header',
          name: 'X-CSRF-Token',
          description:
            "The csrfToken of the cookie beside it: the session login's (or GET /api/auth/session's) for " +
            "the session cookie, the token response's (or GET /api/auth/token/csrf's) for `rt`",
        },
        SECURITY.csrf,
      )
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, SECURITY.bearer)
      .build(),
  );
  return withSharedRules(document);
}

/**
 * What holds for every route, applied from one place rather than repeated on each: a route with no
 * requirement is public (`security: []`: the guard-map test makes every route without an authentication
 * guard say @Public); a cookie credential on an unsafe method comes with its CSRF token, as the session
 * authenticator and the refresh routes check; where a bearer token is accepted its 401 carries
 * `WWW-Authenticate`; every response carries `X-Request-Id`.
 */
function withSharedRules(document: OpenAPIObject): OpenAPIObject {
  const schemes = document.components?.securitySchemes ?? {};
  const cookies = new Set(
    Object.keys(schemes).filter((name) => {
      const scheme = schemes[name];
      return 'in' in scheme && scheme.in === 'cookie';
    }),
  );
  for (const item of Object.values(document.paths)) {
    for (const method of METHODS) {
      const operation: OperationObject | undefined = item[method];
      if (!operation) continue;
      operation.security = (operation.security ?? []).map((requirement) =>
        UNSAFE_METHODS.has(method) && Object.keys(requirement).some((name) => cookies.has(name))
          ? { ...requirement, [SECURITY.csrf]: [] }
          : requirement,
      );
      const bearer = operation.security.some((requirement) => SECURITY.bearer in requirement);
      for (const [status, response] of Object.entries(operation.responses)) {
        const described = response as ResponseObject;
        described.headers = {
          ...(status === '401' && bearer ? { 'WWW-Authenticate': headerRef('WWW-Authenticate') } : {}),
          ...described.headers,
          'X-Request-Id': headerRef('X-Request-Id'),
        };
      }
    }
  }
  document.components = { ...document.components, headers: { ...RESPONSE_HEADERS } };
  return document;
}
