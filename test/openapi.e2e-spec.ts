import request from 'supertest';
import { ERROR_CODES } from '../src/common/error-codes';
import { appFor } from './support/test-app';

/**
 * The OpenAPI document /docs-json serves is what typed clients are generated from (client/openapi.json)
 * and what `npm run lint:openapi` lints in CI. These checks hold what a generated client relies on.
 */

type Requirement = Record<string, string[]>;
interface Header {
  $ref?: string;
}
interface Response {
  headers?: Record<string, Header>;
  content?: Record<
    string,
    { schema?: Schema; examples?: Record<string, { value: Record<string, unknown> }> }
  >;
}
interface Schema {
  $ref?: string;
  type?: string;
  oneOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
}
interface Operation {
  operationId: string;
  security?: Requirement[];
  parameters?: { name: string; schema: Schema }[];
  responses: Record<string, Response>;
}
interface Document {
  servers: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, Schema>;
    securitySchemes: Record<string, { type: string; in?: string; name?: string }>;
    headers: Record<string, unknown>;
  };
}

/** The contract's auth column, and the two routes whose credential is the `rt` cookie. */
type Auth = 'public' | 'session' | 'any' | 'admin' | 'refresh' | 'refreshCookie' | 'bearerLogout';

/** Every route of the contract: method, path, operation id, auth. */
const ROUTES: [string, string, string, Auth][] = [
  ['post', '/api/auth/register', 'register', 'public'],
  ['post', '/api/auth/session/login', 'sessionLogin', 'public'],
  ['get', '/api/auth/session', 'getSession', 'session'],
  ['post', '/api/auth/session/logout', 'sessionLogout', 'session'],
  ['post', '/api/auth/token/login', 'tokenLogin', 'public'],
  ['post', '/api/auth/token/refresh', 'tokenRefresh', 'refresh'],
  ['post', '/api/auth/token/logout', 'tokenLogout', 'bearerLogout'],
  ['get', '/api/auth/token/csrf', 'getRefreshCsrf', 'refreshCookie'],
  ['get', '/.well-known/jwks.json', 'getJwks', 'public'],
  ['get', '/api/me', 'getMe', 'any'],
  ['get', '/api/me/sessions', 'listSignIns', 'any'],
  ['delete', '/api/me/sessions/{id}', 'revokeSignIn', 'any'],
  ['post', '/api/me/logout-all', 'logoutAll', 'any'],
  ['post', '/api/me/password', 'changePassword', 'any'],
  ['delete', '/api/me', 'deleteAccount', 'any'],
  ['get', '/api/admin/users', 'listUsers', 'admin'],
  ['patch', '/api/admin/users/{id}', 'updateUser', 'admin'],
  ['post', '/api/admin/users/{id}/revoke', 'revokeUser', 'admin'],
  ['get', '/api/admin/audit', 'listAudit', 'admin'],
  ['delete', '/api/admin/users/{id}/mfa', 'removeUserMfa', 'admin'],
  ['get', '/health/live', 'live', 'public'],
  ['get', '/health/ready', 'ready', 'public'],
  ['get', '/metrics', 'metrics', 'public'],
  ['post', '/api/auth/password/forgot', 'forgotPassword', 'public'],
  ['post', '/api/auth/password/reset', 'resetPassword', 'public'],
  ['post', '/api/auth/email/verify', 'verifyEmail', 'public'],
  ['post', '/api/me/email/verification', 'requestEmailVerification', 'any'],
  ['post', '/api/me/email', 'changeEmail', 'any'],
  ['post', '/api/auth/mfa/verify', 'mfaVerify', 'public'],
  ['post', '/api/me/mfa/totp', 'enrolTotp', 'any'],
  ['post', '/api/me/mfa/totp/confirm', 'confirmTotp', 'any'],
  ['delete', '/api/me/mfa/totp', 'disableTotp', 'any'],
  ['post', '/api/me/mfa/recovery-codes', 'regenerateRecoveryCodes', 'any'],
];

const UNSAFE = new Set(['post', 'put', 'patch', 'delete']);

/** The security requirements the contract implies: a cookie on an unsafe method needs X-CSRF-Token. */
function expectedSecurity(method: string, auth: Auth): Requirement[] {
  const csrf: Requirement = UNSAFE.has(method) ? { csrf: [] } : {};
  switch (auth) {
    case 'public':
      return [];
    case 'session':
      return [{ session: [], ...csrf }];
    case 'any':
    case 'admin':
      return [{ session: [], ...csrf }, { bearer: [] }];
    case 'refresh':
      return [{}, { refreshCookie: [], csrf: [] }];
    case 'refreshCookie':
      return [{ refreshCookie: [] }];
    case 'bearerLogout':
      return [{ bearer: [] }, { bearer: [], refreshCookie: [], csrf: [] }];
  }
}

describe('the OpenAPI document', () => {
  const app = appFor().current;
  let document: Document;

  beforeAll(async () => {
    document = (await request(app().url).get('/docs-json').expect(200)).body as Document;
  });

  const operations = () =>
    Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({ path, method, operation })),
    );
  const op = (method: string, path: string) => document.paths[path]?.[method];
  const refs = (schema: Schema | undefined) =>
    (schema?.oneOf ?? []).map(({ $ref }) => $ref?.split('/').pop());
  const okSchema = (method: string, path: string) =>
    op(method, path).responses['200'].content?.['application/json'].schema;

  it('describes every route of the contract, and nothing else, with its operation id and security', () => {
    for (const [method, path, operationId, auth] of ROUTES) {
      const operation = op(method, path);
      expect({ method, path, operationId: operation?.operationId, security: operation?.security }).toEqual({
        method,
        path,
        operationId,
        security: expectedSecurity(method, auth),
      });
    }
    expect(
      operations()
        .map(({ method, path }) => `${method} ${path}`)
        .sort(),
    ).toEqual(ROUTES.map(([method, path]) => `${method} ${path}`).sort());
  });

  it('has the security schemes, a CSRF header among them, and a server that names no host', () => {
    expect(document.components.securitySchemes).toEqual({
      session: { type: 'apiKey', in: 'cookie', name: 'sid' },
      refreshCookie: expect.objectContaining({ type: 'apiKey', in: 'cookie', name: 'rt' }),
      csrf: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-CSRF-Token' }),
      bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
    });
    expect(document.servers).toEqual([expect.objectContaining({ url: '/' })]);
    const cookies = ['session', 'refreshCookie'];
    for (const { method, operation } of operations()) {
      for (const requirement of operation.security ?? []) {
        const withCookie = Object.keys(requirement).some((name) => cookies.includes(name));
        if (withCookie && UNSAFE.has(method)) expect(requirement).toHaveProperty('csrf');
      }
    }
  });

  it('gives the token response as its two shapes, and the login answers with the second-factor challenge', () => {
    const { schemas } = document.components;
    expect(schemas.BodyTokenResponseDto.required).toContain('refreshToken');
    expect(schemas.BodyTokenResponseDto.properties).not.toHaveProperty('csrfToken');
    expect(schemas.CookieTokenResponseDto.required).toContain('csrfToken');
    expect(schemas.CookieTokenResponseDto.properties).not.toHaveProperty('refreshToken');
    expect(schemas.MfaChallengeDto.required).toEqual(['mfaRequired', 'mfaToken', 'methods']);
    expect(refs(okSchema('post', '/api/auth/token/refresh'))).toEqual([
      'BodyTokenResponseDto',
      'CookieTokenResponseDto',
    ]);
    expect(refs(okSchema('post', '/api/auth/token/login'))).toEqual([
      'BodyTokenResponseDto',
      'CookieTokenResponseDto',
      'MfaChallengeDto',
    ]);
    expect(refs(okSchema('post', '/api/auth/session/login'))).toEqual([
      'SessionLoginResponseDto',
      'MfaChallengeDto',
    ]);
    expect(refs(okSchema('post', '/api/auth/mfa/verify'))).toEqual([
      'SessionLoginResponseDto',
      'BodyTokenResponseDto',
      'CookieTokenResponseDto',
    ]);
  });

  it('types counts and lifetimes as integers', () => {
    const { schemas } = document.components;
    const integers: [string, string][] = [
      ['ErrorBodyDto', 'statusCode'],
      ['BodyTokenResponseDto', 'expiresIn'],
      ['BodyTokenResponseDto', 'refreshExpiresIn'],
      ['CookieTokenResponseDto', 'expiresIn'],
      ['CookieTokenResponseDto', 'refreshExpiresIn'],
      ...['UserPageDto', 'AuditPageDto'].flatMap((page) =>
        ['total', 'page', 'limit'].map((field): [string, string] => [page, field]),
      ),
    ];
    for (const [schema, field] of integers) {
      expect({ schema, field, type: schemas[schema].properties?.[field].type }).toEqual({
        schema,
        field,
        type: 'integer',
      });
    }
    for (const path of ['/api/admin/users', '/api/admin/audit']) {
      const query = op('get', path).parameters ?? [];
      for (const name of ['page', 'limit']) {
        expect(query.find((parameter) => parameter.name === name)?.schema.type).toBe('integer');
      }
    }
  });

  it('documents the response headers: X-Request-Id on every answer, Retry-After, WWW-Authenticate, Set-Cookie', () => {
    expect(Object.keys(document.components.headers).sort()).toEqual([
      'Retry-After',
      'WWW-Authenticate',
      'X-Request-Id',
    ]);
    for (const { operation } of operations()) {
      const bearer = (operation.security ?? []).some((requirement) => 'bearer' in requirement);
      for (const [status, response] of Object.entries(operation.responses)) {
        const headers = Object.keys(response.headers ?? {});
        expect(headers).toContain('X-Request-Id');
        if (status === '429') expect(headers).toContain('Retry-After');
        if (status === '401' && bearer) expect(headers).toContain('WWW-Authenticate');
      }
    }
    const setting: [string, string, string][] = [
      ['post', '/api/auth/session/login', '200'],
      ['post', '/api/auth/session/logout', '204'],
      ['post', '/api/auth/token/login', '200'],
      ['post', '/api/auth/token/refresh', '200'],
      ['post', '/api/auth/token/logout', '204'],
      ['post', '/api/auth/mfa/verify', '200'],
      ['post', '/api/me/password', '204'],
    ];
    for (const [method, path, status] of setting) {
      expect(op(method, path).responses[status].headers).toHaveProperty('Set-Cookie');
    }
  });

  it('gives every error response an example per code, in the error shape, with that status', () => {
    for (const { operation } of operations()) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue;
        const json = response.content?.['application/json'];
        expect(json?.schema?.$ref).toBe('#/components/schemas/ErrorBodyDto');
        const examples = Object.entries(json?.examples ?? {});
        expect(examples.length).toBeGreaterThan(0);
        for (const [code, { value }] of examples) {
          expect(ERROR_CODES[code as keyof typeof ERROR_CODES]?.[0]).toBe(Number(status));
          expect(value).toMatchObject({ statusCode: Number(status), code, message: expect.any(String) });
        }
      }
    }
  });

  it('matches what the service answers: a bearer-accepting route without credentials', async () => {
    const response = await request(app().url).get('/api/me').expect(401);
    const documented = op('get', '/api/me').responses['401'];
    expect(Object.keys(documented.content!['application/json'].examples!)).toContain(response.body.code);
    expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(response.headers['x-request-id']).toBe(response.body.requestId);
  });
});
