import request, { Response } from 'supertest';
import { promisify } from 'node:util';
import { SignIns } from '../src/auth/sign-ins';
import { loadSession } from '../src/session/session-index';
import { SessionStore } from '../src/session/session.store';
import { UsersService } from '../src/users/users.service';
import { expectError, SessionCaller, sessionCookieOf, sessionLogin, setCookies } from './support/clients';
import { registerUser, RegisteredUser } from './support/factories';
import { holdNextCall } from './support/hold';
import { shareDatabase, SharedDatabase } from './support/instances';
import { createTestStorage, RunningApp, startApp, TestStorage } from './support/test-app';

const NEW_PASSWORD = 'quartz-meadow-falcon-91';

function sidOf(cookie: string): string {
  const value = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1));
  return value.slice(2, value.lastIndexOf('.'));
}

/** Starts a request and returns its eventual response (supertest sends only once awaited). */
function send(test: request.Test): Promise<Response> {
  return test.then((response) => response);
}

/**
 * A request in flight on a cookie session when that session is logged out, revoked or replaced must not
 * write it back when it finishes. The held request is GET /api/me/sessions on instance A, stopped inside
 * its handler (after the guard recorded activity, which marks the session for saving at the end of the
 * response); the revocation goes through instance B. One instance (A is B) and two instances on one
 * database (and one Redis where configured), each in-process so a provider call can be held.
 */
describe.each([
  ['one instance', 1],
  ['two instances', 2],
])('a revoked session stays revoked (%s)', (_label, instances) => {
  let storage: TestStorage;
  let shared: SharedDatabase | undefined;
  let a: RunningApp;
  let b: RunningApp;

  beforeAll(async () => {
    storage = await createTestStorage();
    if (instances === 1) {
      a = b = await startApp(storage.env);
    } else {
      shared = await shareDatabase(storage.env);
      a = await startApp(shared.env);
      b = await startApp(shared.env);
    }
  }, 120_000);

  afterAll(async () => {
    await a?.close();
    if (b !== a) await b?.close();
    await shared?.close();
    await storage?.drop();
  });

  const store = () => a.app.get(SessionStore);

  /** Moves lastSeenAt back, so the session's next request records activity (a store write at its end). */
  async function age(caller: SessionCaller): Promise<void> {
    const sid = sidOf(caller.cookie);
    const data = await loadSession(store(), sid);
    expect(data).toBeTruthy();
    const set = promisify(store().set.bind(store()));
    await set(sid, { ...data!, lastSeenAt: data!.lastSeenAt - 10 * 60_000 });
  }

  async function publicIdOf(caller: SessionCaller): Promise<string> {
    return (
      (await caller.auth(request(a.url).get('/api/me')).expect(200)).body as { auth: { sessionId: string } }
    ).auth.sessionId;
  }

  async function listedIds(caller: SessionCaller): Promise<string[]> {
    const response = await caller.auth(request(b.url).get('/api/me/sessions')).expect(200);
    return (response.body as { id: string; method: string }[])
      .filter((entry) => entry.method === 'session')
      .map((entry) => entry.id);
  }

  async function expectGone(victim: SessionCaller): Promise<void> {
    // The store first: a request on a session the user's revocation stamp refuses would delete it itself.
    expect(await loadSession(store(), sidOf(victim.cookie))).toBeFalsy();
    for (const instance of [a, b]) {
      const response = await request(instance.url).get('/api/auth/session').set('Cookie', victim.cookie);
      expectError(response, 401, 'SESSION_INVALID');
    }
  }

  interface Scene {
    user: RegisteredUser;
    victim: SessionCaller;
    victimId: string;
    other: SessionCaller;
  }

  /** Holds a request of the victim's session in flight across `revoke`, then lets it finish with 200. */
  async function heldAcross(revoke: (scene: Scene) => Promise<void>): Promise<Scene> {
    const user = await registerUser(a.url);
    const victim = await sessionLogin(a.url, user);
    const other = await sessionLogin(a.url, user);
    const scene = { user, victim, victimId: await publicIdOf(victim), other };
    await age(victim);
    const held = holdNextCall(a.app.get(SignIns), 'list');
    const inFlight = send(victim.auth(request(a.url).get('/api/me/sessions')));
    await held.entered;
    await revoke(scene);
    held.release();
    expect((await inFlight).status).toBe(200);
    return scene;
  }

  it('after its logout', async () => {
    const { victim, victimId, other } = await heldAcross(async ({ victim }) => {
      await victim.auth(request(b.url).post('/api/auth/session/logout')).expect(204);
    });
    await expectGone(victim);
    const listed = await listedIds(other);
    expect(listed).not.toContain(victimId);
    expect(listed).toHaveLength(1);
  });

  it('after a revocation by id from another session', async () => {
    const { victim, victimId, other } = await heldAcross(async ({ victimId, other }) => {
      await other.auth(request(b.url).delete(`/api/me/sessions/${victimId}`)).expect(204);
    });
    await expectGone(victim);
    const listed = await listedIds(other);
    expect(listed).not.toContain(victimId);
    expect(listed).toHaveLength(1);
  });

  it('after logout-all from another session', async () => {
    const { user, victim } = await heldAcross(async ({ other }) => {
      await other.auth(request(b.url).post('/api/me/logout-all')).expect(204);
    });
    await expectGone(victim);
    const fresh = await sessionLogin(b.url, user);
    expect(await listedIds(fresh)).toEqual([await publicIdOf(fresh)]);
  });

  it('after a password change on the same session gave it a new id (the old id stays dead)', async () => {
    let renewed: SessionCaller | undefined;
    const { victim, victimId, user } = await heldAcross(async ({ victim, user }) => {
      const response = await victim
        .auth(request(b.url).post('/api/me/password'))
        .send({ currentPassword: user.password, newPassword: NEW_PASSWORD })
        .expect(204);
      const cookie = sessionCookieOf(response);
      expect(cookie).toBeDefined();
      renewed = {
        ...victim,
        cookie: cookie!,
        auth: (test) => test.set('Cookie', cookie!).set('X-CSRF-Token', victim.csrfToken),
      };
    });
    expect(user).toBeDefined();
    await expectGone(victim);
    // The session lives on under its new id, listed once, with the same public id.
    expect(await listedIds(renewed!)).toEqual([victimId]);
  });

  it.each([
    ['a revocation by id from another session', 'revoke'],
    ['its own logout', 'logout'],
  ])(
    'ends a password change in flight whose session is ended by %s: no new id outlives it',
    async (_label, how) => {
      const user = await registerUser(a.url);
      const victim = await sessionLogin(a.url, user);
      const other = await sessionLogin(a.url, user);
      const victimId = await publicIdOf(victim);
      const held = holdNextCall(a.app.get(UsersService), 'hashNewPassword');
      const inFlight = send(
        victim
          .auth(request(a.url).post('/api/me/password'))
          .send({ currentPassword: user.password, newPassword: NEW_PASSWORD }),
      );
      await held.entered;
      if (how === 'revoke')
        await other.auth(request(b.url).delete(`/api/me/sessions/${victimId}`)).expect(204);
      else await victim.auth(request(b.url).post('/api/auth/session/logout')).expect(204);
      held.release();
      const response = await inFlight;
      expect(response.status).toBe(204);
      // Whatever cookie the change set (a cleared one) authenticates nothing.
      const cookie = sessionCookieOf(response);
      if (cookie) {
        expect((await request(b.url).get('/api/auth/session').set('Cookie', cookie)).status).toBe(401);
      }
      expect(setCookies(response).every((header) => /^(__Host-)?sid=;/.test(header))).toBe(true);
      await expectGone(victim);
      // The password change itself stood, and revoked the other session as well.
      await sessionLogin(b.url, { email: user.email, password: NEW_PASSWORD });
      expectError(
        await request(b.url).get('/api/auth/session').set('Cookie', other.cookie),
        401,
        'SESSION_INVALID',
      );
    },
  );
});
