import { RequestMethod } from '@nestjs/common';
import { GUARDS_METADATA, METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, MetadataScanner, ModulesContainer } from '@nestjs/core';
import { AnyAuthGuard } from '../src/auth/any-auth.guard';
import { ROLES, RolesGuard } from '../src/auth/roles.guard';
import { IS_PUBLIC } from '../src/common/public.decorator';
import { SessionGuard } from '../src/session/session.guard';
import { JwtGuard } from '../src/token/jwt.guard';
import { createTestStorage, RunningApp, startApp, TestStorage } from './support/test-app';

type Auth = 'public' | 'session' | 'bearer' | 'any' | 'admin';

/** The contract's auth column, route by route. A route missing here, or guarded otherwise, fails. */
const CONTRACT: Record<string, Auth> = {
  'POST /api/auth/register': 'public',
  'POST /api/auth/session/login': 'public',
  'GET /api/auth/session': 'session',
  'POST /api/auth/session/logout': 'session',
  'POST /api/auth/token/login': 'public',
  'POST /api/auth/token/refresh': 'public',
  'POST /api/auth/token/logout': 'bearer',
  // Authenticated by the `rt` refresh cookie, which the route itself reads.
  'GET /api/auth/token/csrf': 'public',
  'GET /.well-known/jwks.json': 'public',
  'GET /api/me': 'any',
  'GET /api/me/sessions': 'any',
  'DELETE /api/me/sessions/:id': 'any',
  'POST /api/me/logout-all': 'any',
  'POST /api/me/password': 'any',
  'DELETE /api/me': 'any',
  'POST /api/auth/password/forgot': 'public',
  'POST /api/auth/password/reset': 'public',
  'POST /api/auth/email/verify': 'public',
  'POST /api/me/email/verification': 'any',
  'POST /api/me/email': 'any',
  'GET /api/admin/users': 'admin',
  'PATCH /api/admin/users/:id': 'admin',
  'POST /api/admin/users/:id/revoke': 'admin',
  'GET /api/admin/audit': 'admin',
  'DELETE /api/admin/users/:id/mfa': 'admin',
  'POST /api/auth/mfa/verify': 'public',
  'POST /api/me/mfa/totp': 'any',
  'POST /api/me/mfa/totp/confirm': 'any',
  'DELETE /api/me/mfa/totp': 'any',
  'POST /api/me/mfa/recovery-codes': 'any',
  'GET /health/live': 'public',
  'GET /health/ready': 'public',
  'GET /metrics': 'public',
};

const AUTH_GUARDS = new Set<unknown>([SessionGuard, JwtGuard, AnyAuthGuard, RolesGuard]);

function joinPath(...parts: (string | undefined)[]): string {
  return `/${parts
    .flatMap((part) => (part ?? '').split('/'))
    .filter(Boolean)
    .join('/')}`;
}

/** What the route's decorators say, in the contract's terms; 'unguarded' when a route says nothing. */
function declaredAuth(controller: object, handler: object): string {
  const guards = [
    ...((Reflect.getMetadata(GUARDS_METADATA, controller) as unknown[] | undefined) ?? []),
    ...((Reflect.getMetadata(GUARDS_METADATA, handler) as unknown[] | undefined) ?? []),
  ].filter((guard) => AUTH_GUARDS.has(guard));
  const isPublic = Reflect.getMetadata(IS_PUBLIC, handler) ?? Reflect.getMetadata(IS_PUBLIC, controller);
  const roles = (Reflect.getMetadata(ROLES, handler) ?? Reflect.getMetadata(ROLES, controller)) as
    string[] | undefined;
  const names = guards.map((guard) => (guard as { name: string }).name).join('+');
  if (isPublic === true) return guards.length === 0 && !roles ? 'public' : `public with ${names}`;
  if (names === 'SessionGuard' && !roles) return 'session';
  if (names === 'JwtGuard' && !roles) return 'bearer';
  if (names === 'AnyAuthGuard' && !roles) return 'any';
  if (names === 'AnyAuthGuard+RolesGuard' && roles?.join() === 'admin') return 'admin';
  return names ? `${names} roles=${roles?.join() ?? ''}` : 'unguarded';
}

describe('guard map: every route is guarded as the contract says', () => {
  let storage: TestStorage;
  let running: RunningApp;

  beforeAll(async () => {
    storage = await createTestStorage();
    running = await startApp(storage.env);
  });

  afterAll(async () => {
    await running?.close();
    await storage?.drop();
  });

  it('matches the contract route for route', () => {
    // The app does not import DiscoveryModule; the service needs only the modules container.
    const discovery = new DiscoveryService(running.app.get(ModulesContainer));
    const scanner = new MetadataScanner();
    const found: Record<string, string> = {};
    for (const wrapper of discovery.getControllers()) {
      const controller = wrapper.metatype as (new (...args: never[]) => object) | undefined;
      if (!controller) continue;
      const base = Reflect.getMetadata(PATH_METADATA, controller) as string | undefined;
      const prototype = controller.prototype as Record<string, object>;
      for (const name of scanner.getAllMethodNames(prototype)) {
        const handler = prototype[name];
        const path = Reflect.getMetadata(PATH_METADATA, handler) as string | undefined;
        const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
        if (path === undefined || method === undefined) continue;
        found[`${RequestMethod[method]} ${joinPath(base, path)}`] = declaredAuth(controller, handler);
      }
    }
    expect(found).toEqual(CONTRACT);
  });
});
