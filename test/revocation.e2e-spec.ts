import { createClient } from 'redis';
import request from 'supertest';
import { DataSource, type EntitySubscriberInterface } from 'typeorm';
import { MessageBus, RevocationBus } from '../src/revocation/revocation-bus';
import { Revocations } from '../src/revocation/revocations';
import { UsersService } from '../src/users/users.service';
import { registerUser } from './support/factories';
import { until } from './support/held';
import { Caller, refresh, sessionLogin, signIn, TokenCaller, tokenLogin } from './support/clients';
import { createTestStorage, Env, RunningApp, startApp, TEST_SERVERS, TestStorage } from './support/test-app';

const ADMIN = { id: '', email: 'cache.admin@example.com', password: 'admin-orbit-lantern-77' };
const NEW_PASSWORD = 'quartz-meadow-falcon-91';
const METHODS = ['session', 'token'] as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Topology {
  name: string;
  instances: 1 | 2;
  redis: boolean;
}

/**
 * Two instances on one database need a database server; the embedded database belongs to one process,
 * where the writer's own commit hook is what keeps the cache exact.
 */
function topologies(): Topology[] {
  if (!TEST_SERVERS.postgres) {
    return [{ name: 'one process on the embedded database', instances: 1, redis: TEST_SERVERS.redis }];
  }
  return [
    ...(TEST_SERVERS.redis
      ? [{ name: 'two instances over Redis pub/sub', instances: 2 as const, redis: true }]
      : []),
    { name: 'two instances over PostgreSQL LISTEN/NOTIFY, no Redis', instances: 2, redis: false },
  ];
}

/** Waits (without asserting how long it takes) until the instance trusts its cache. */
function untilTrusted(app: RunningApp): Promise<void> {
  const revocations = app.app.get(Revocations);
  return until(() => revocations.isTrusted);
}

function busOf(app: RunningApp): MessageBus {
  return app.app.get<RevocationBus, MessageBus>(RevocationBus);
}

/** Waits until the instance has heard the other instances' probes, so that it waits for their confirmations. */
function untilPeers(app: RunningApp, count: number): Promise<void> {
  const bus = busOf(app);
  return until(() => bus.peerCount >= count);
}

/** Records the statements an instance sends that read or write the revocation state. */
function watchRevocationQueries(app: RunningApp): string[] {
  const seen: string[] = [];
  const watcher: EntitySubscriberInterface = {
    beforeQuery: (event) => {
      if (/"(users|refresh_families)"/.test(event.query)) seen.push(event.query);
    },
  };
  app.app.get(DataSource).subscribers.push(watcher);
  return seen;
}

describe.each(topologies())('revocation cache: $name', (topology) => {
  let storage: TestStorage;
  let a: RunningApp;
  let b: RunningApp;
  let queriesOnA: string[];
  let env: Env;

  beforeAll(async () => {
    storage = await createTestStorage();
    env = {
      ...storage.env,
      ...(topology.redis ? {} : { REDIS_URL: undefined }),
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      REFRESH_REUSE_GRACE: '1s',
    };
    a = await startApp(env);
    b = topology.instances === 2 ? await startApp(env) : a;
    await untilTrusted(a);
    await untilTrusted(b);
    if (topology.instances === 2) {
      await untilPeers(a, 1);
      await untilPeers(b, 1);
    }
    queriesOnA = watchRevocationQueries(a);
  });

  afterAll(async () => {
    if (b && b !== a) await b.close();
    await a?.close();
    await storage?.drop();
  });

  const me = (app: RunningApp, caller: Caller) => caller.auth(request(app.url).get('/api/me'));

  /** 200 when the caller passes on that instance, else the error code it gets. */
  async function outcome(app: RunningApp, caller: Caller): Promise<number | string> {
    const response = await me(app, caller);
    return response.status === 200 ? 200 : (response.body as { code: string }).code;
  }

  /** Every caller passes on A, which leaves their state in A's cache. */
  async function warmOnA(...callers: Caller[]): Promise<void> {
    for (const caller of callers) expect(await outcome(a, caller)).toBe(200);
  }

  async function revocationQueriesOnA(work: () => Promise<unknown>): Promise<string[]> {
    const before = queriesOnA.length;
    await work();
    return queriesOnA.slice(before);
  }

  async function sessionIdOf(caller: Caller): Promise<string> {
    return ((await me(b, caller).expect(200)).body as { auth: { sessionId: string } }).auth.sessionId;
  }

  it.each(METHODS)(
    'a warm cache answers GET /api/me by %s with no read of users or refresh_families',
    async (method) => {
      const user = await registerUser(b.url, { displayName: 'Cached Caller' });
      const caller = await signIn(b.url, user, method);
      await warmOnA(caller);
      let body: unknown;
      const queries = await revocationQueriesOnA(async () => {
        body = (await me(a, caller).expect(200)).body;
      });
      expect(queries).toEqual([]);
      expect(body).toMatchObject({
        user: { id: user.id, email: user.email, displayName: 'Cached Caller', role: 'user' },
        auth: { method },
      });
    },
  );

  it('token logout on B: the access token is refused on A at the next request', async () => {
    const user = await registerUser(b.url);
    const caller = await tokenLogin(b.url, user);
    await warmOnA(caller);
    await caller
      .auth(request(b.url).post('/api/auth/token/logout'))
      .send({ refreshToken: caller.refreshToken })
      .expect(204);
    expect(await outcome(a, caller)).toBe('TOKEN_REVOKED');
  });

  it('refresh token reuse on B revokes the family: all its access tokens are refused on A', async () => {
    const user = await registerUser(b.url);
    const first = await tokenLogin(b.url, user);
    const rotated = await refresh(b.url, first.refreshToken);
    expect(rotated.status).toBe(200);
    const second = await tokenLogin(b.url, user);
    const next: Caller = {
      method: 'token',
      auth: (test) =>
        test.set('Authorization', `Bearer ${(rotated.body as { accessToken: string }).accessToken}`),
    };
    await warmOnA(first, next, second);
    await sleep(1100);
    expect((await refresh(b.url, first.refreshToken)).body).toMatchObject({ code: 'REFRESH_TOKEN_REUSED' });
    expect(await outcome(a, first)).toBe('TOKEN_REVOKED');
    expect(await outcome(a, next)).toBe('TOKEN_REVOKED');
    expect(await outcome(a, second)).toBe(200);
  });

  it('DELETE /api/me/sessions/:id on B revokes a family: its access token is refused on A', async () => {
    const user = await registerUser(b.url);
    const revoker = await tokenLogin(b.url, user);
    const victim = await tokenLogin(b.url, user);
    await warmOnA(revoker, victim);
    await revoker.auth(request(b.url).delete(`/api/me/sessions/${await sessionIdOf(victim)}`)).expect(204);
    expect(await outcome(a, victim)).toBe('TOKEN_REVOKED');
    expect(await outcome(a, revoker)).toBe(200);
  });

  it.each(METHODS)('logout-all by %s on B refuses every sign-in of the user on A', async (method) => {
    const user = await registerUser(b.url);
    const actor = await signIn(b.url, user, method);
    const session = await sessionLogin(b.url, user);
    const token = await tokenLogin(b.url, user);
    await warmOnA(actor, session, token);
    await actor.auth(request(b.url).post('/api/me/logout-all')).expect(204);
    expect(await outcome(a, session)).toBe('SESSION_INVALID');
    expect(await outcome(a, token)).toBe('TOKEN_REVOKED');
    expect(await outcome(a, actor)).toBe(method === 'session' ? 'SESSION_INVALID' : 'TOKEN_REVOKED');
  });

  it('password change on B refuses the other sign-ins and the access tokens on A', async () => {
    const user = await registerUser(b.url);
    const actor = await tokenLogin(b.url, user);
    const session = await sessionLogin(b.url, user);
    const token = await tokenLogin(b.url, user);
    await warmOnA(actor, session, token);
    await actor
      .auth(request(b.url).post('/api/me/password'))
      .send({ currentPassword: user.password, newPassword: NEW_PASSWORD })
      .expect(204);
    expect(await outcome(a, session)).toBe('SESSION_INVALID');
    expect(await outcome(a, token)).toBe('TOKEN_REVOKED');
    expect(await outcome(a, actor)).toBe('TOKEN_REVOKED');
  });

  it('role change on B: on A a live session acts with the new role, an access token is refused', async () => {
    const admin = await tokenLogin(b.url, ADMIN);
    const user = await registerUser(b.url);
    const session = await sessionLogin(b.url, user);
    const token = await tokenLogin(b.url, user);
    await warmOnA(session, token);
    await session.auth(request(a.url).get('/api/admin/users')).expect(403);
    await admin
      .auth(request(b.url).patch(`/api/admin/users/${user.id}`))
      .send({ role: 'admin' })
      .expect(200);
    await session.auth(request(a.url).get('/api/admin/users')).expect(200);
    expect((await me(a, session).expect(200)).body).toMatchObject({ user: { role: 'admin' } });
    expect(await outcome(a, token)).toBe('TOKEN_REVOKED');
  });

  it('admin revoke on B logs the user out on A', async () => {
    const admin = await tokenLogin(b.url, ADMIN);
    const user = await registerUser(b.url);
    const session = await sessionLogin(b.url, user);
    const token = await tokenLogin(b.url, user);
    await warmOnA(session, token);
    await admin.auth(request(b.url).post(`/api/admin/users/${user.id}/revoke`)).expect(204);
    expect(await outcome(a, session)).toBe('SESSION_INVALID');
    expect(await outcome(a, token)).toBe('TOKEN_REVOKED');
  });

  it('account deletion on B refuses its session and token on A', async () => {
    const user = await registerUser(b.url);
    const session = await sessionLogin(b.url, user);
    const token = await tokenLogin(b.url, user);
    await warmOnA(session, token);
    await token.auth(request(b.url).delete('/api/me')).send({ password: user.password }).expect(204);
    expect(await outcome(a, session)).toBe('SESSION_INVALID');
    expect(await outcome(a, token)).toBe('TOKEN_REVOKED');
  });

  it('a stamp written in a transaction on B reaches A at commit; a rolled-back one drops nothing', async () => {
    const user = await registerUser(b.url);
    const session = await sessionLogin(b.url, user);
    const token = await tokenLogin(b.url, user);
    await warmOnA(session, token);
    const users = b.app.get(UsersService);
    await expect(
      users.transaction(async (manager) => {
        await users.revokeAll(user.id, manager);
        throw new Error('abandoned');
      }),
    ).rejects.toThrow('abandoned');
    expect(await revocationQueriesOnA(() => warmOnA(session, token))).toEqual([]);
    // Only the stamp: the session stays in its store, so the cached user state alone must refuse it.
    await users.transaction((manager) => users.revokeAll(user.id, manager));
    expect(await outcome(a, session)).toBe('SESSION_INVALID');
    expect(await outcome(a, token)).toBe('TOKEN_REVOKED');
  });

  if (topology.instances === 2) {
    /** Cuts A's subscription from outside, the way a network fault or a server restart would. */
    async function breakSubscriptionOfA(): Promise<void> {
      const name = busOf(a).connectionName;
      if (topology.redis) {
        const killer = createClient({ url: storage.env.REDIS_URL });
        await killer.connect();
        try {
          const clients = await killer.sendCommand<string>(['CLIENT', 'LIST']);
          const id = clients
            .split('\n')
            .find((line) => line.includes(` name=${name} `))
            ?.match(/^id=(\d+)/)?.[1];
          expect(id).toBeDefined();
          expect(await killer.sendCommand(['CLIENT', 'KILL', 'ID', id!])).toBe(1);
        } finally {
          await killer.close();
        }
      } else {
        const rows = await b.app
          .get(DataSource)
          .query<{ killed: boolean }[]>(
            'SELECT pg_terminate_backend(pid, 5000) AS killed FROM pg_stat_activity WHERE application_name = $1',
            [name],
          );
        expect(rows).toEqual([{ killed: true }]);
      }
    }

    /** A's subscription hands it each invalidation `ms` late, as a busy instance or server might. */
    function delayInvalidationsOnA(ms: number): () => void {
      const bus = busOf(a) as unknown as { receive(payload: string): void };
      const receive = bus.receive.bind(bus);
      bus.receive = (payload) => {
        if (payload.includes('"changed"')) setTimeout(() => receive(payload), ms);
        else receive(payload);
      };
      return () => delete (bus as { receive?: unknown }).receive;
    }

    it('B answers revocations only once A has handled them, however late A hears of them (24 in parallel)', async () => {
      const user = await registerUser(b.url);
      const callers: TokenCaller[] = [];
      for (let i = 0; i < 24; i += 1) callers.push(await tokenLogin(b.url, user));
      await warmOnA(...callers);
      const restore = delayInvalidationsOnA(400);
      try {
        await Promise.all(
          callers.map((caller) =>
            caller
              .auth(request(b.url).post('/api/auth/token/logout'))
              .send({ refreshToken: caller.refreshToken })
              .expect(204),
          ),
        );
        const outcomes = await Promise.all(callers.map((caller) => outcome(a, caller)));
        expect(outcomes).toEqual(callers.map(() => 'TOKEN_REVOKED'));
      } finally {
        restore();
      }
    });

    it('an instance that stops says goodbye: the others no longer wait for its confirmation', async () => {
      const c = await startApp(env);
      try {
        await untilTrusted(c);
        await untilPeers(b, 2);
      } finally {
        await c.close();
      }
      // The goodbye is on its way when close() returns; silence alone would take 6 s to drop C.
      const bus = busOf(b);
      await until(() => bus.peerCount === 1, 1000);
      // Each instance logs in with its own strategy, not the one passport registered last (C's, now closed).
      await tokenLogin(a.url, await registerUser(a.url));
    });

    it('a broken subscription drops the cache: nothing revoked passes meanwhile, and it recovers by itself', async () => {
      const user = await registerUser(b.url);
      const bystander = await tokenLogin(b.url, await registerUser(b.url));
      const session = await sessionLogin(b.url, user);
      const token = await tokenLogin(b.url, user);
      await warmOnA(session, token, bystander);

      await breakSubscriptionOfA();
      // Only the stamp, written on B while A hears nothing.
      await b.app.get(UsersService).revokeAll(user.id);
      expect(await outcome(a, session)).toBe('SESSION_INVALID');
      expect(await outcome(a, token)).toBe('TOKEN_REVOKED');
      // What A held was dropped: the bystander's state is read again.
      expect(await revocationQueriesOnA(() => warmOnA(bystander))).not.toEqual([]);

      await untilTrusted(a);
      const again = await tokenLogin(b.url, user);
      await warmOnA(again);
      expect(await revocationQueriesOnA(() => warmOnA(again))).toEqual([]);
      await b.app.get(UsersService).revokeAll(user.id);
      expect(await outcome(a, again)).toBe('TOKEN_REVOKED');
    });
  }
});
