import { JwtService } from '@nestjs/jwt';
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  JsonWebKey,
  KeyObject,
  randomUUID,
  verify,
} from 'node:crypto';
import type { Request, Response } from 'express';
import { b64, decodePart, forge } from '../../test/support/tokens';
import type { AppError } from '../common/app-error';
import type { Clock } from '../common/clock';
import type { AppConfig, JwtAlgorithm } from '../config/app-config';
import type { UsersService } from '../users/users.service';
import { AccessTokens } from './access-tokens';
import { authenticateBearer } from './jwt.guard';
import { JwtStrategy } from './jwt.strategy';
import { generateKeyMaterial, RingKey, signingKeyFrom } from './key-material';
import type { RefreshFamilies } from './refresh-families';
import type { SigningKeys } from './signing-keys';

const NOW = 1_700_000_000;
const LEEWAY = 30;
const TTL = 900;
const ALGORITHMS: JwtAlgorithm[] = ['ES256', 'RS256', 'HS256'];

interface TestKey {
  ring: RingKey & { signing: NonNullable<RingKey['signing']> };
  /** What node:crypto forges with: the PKCS#8 key, or the HS256 secret string. */
  forging: KeyObject | string;
}

const keys = {} as Record<JwtAlgorithm, TestKey>;

beforeAll(() => {
  for (const algorithm of ALGORITHMS) {
    const material = generateKeyMaterial(algorithm);
    const ring = signingKeyFrom(algorithm, material) as TestKey['ring'];
    keys[algorithm] = { ring, forging: algorithm === 'HS256' ? material : createPrivateKey(material) };
  }
});

function config(algorithm: JwtAlgorithm): AppConfig {
  return {
    token: { algorithm, issuer: 'https://auth.test.example', audience: 'api', accessTtlSeconds: TTL },
  } as AppConfig;
}

const clockAt = (seconds: number) => ({ now: () => seconds * 1000, nowSeconds: () => seconds });

function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: 'https://auth.test.example',
    aud: 'api',
    sub: randomUUID(),
    role: 'user',
    sid: randomUUID(),
    jti: randomUUID(),
    amr: ['pwd'],
    iat: NOW - 10,
    exp: NOW + 890,
    ...overrides,
  };
}

type Outcome = { ok: true; userId: string; sessionId: string; expiresAt: Date } | { ok: false; code: string };

/**
 * The `jwt` strategy, run through passport as the guards run it, over a ring holding only `algorithm`'s key
 * (as the service's ring does) and a revocation state in which nothing is revoked.
 */
function strategyOver(algorithm: JwtAlgorithm, clock: Clock, ringKey?: RingKey, revoked = new Set<string>()) {
  const { ring } = keys[algorithm];
  const findKey = jest.fn((kid: string) => ringKey ?? (kid === ring.kid ? ring : undefined));
  // The family's owner is whoever the token names: only the families in `revoked` are revoked.
  let owner = '';
  const users = {
    state: (id: string) => {
      owner = id;
      return Promise.resolve({ id, role: 'user', revokedBefore: null, tokensRevokedBefore: null });
    },
  } as unknown as UsersService;
  const families = {
    state: (id: string) => Promise.resolve({ userId: owner, revoked: revoked.has(id) }),
  } as unknown as RefreshFamilies;
  const strategy = new JwtStrategy(
    config(algorithm),
    { find: findKey } as unknown as SigningKeys,
    users,
    families,
    clock,
  );
  const run = (token: string): Promise<Outcome> =>
    authenticateBearer(
      strategy,
      { headers: { authorization: `Bearer ${token}` } } as Request,
      {} as Response,
    ).then(
      (principal) => ({
        ok: true,
        userId: principal.userId,
        sessionId: principal.sessionId,
        expiresAt: principal.expiresAt,
      }),
      (error: AppError) => ({ ok: false, code: error.code }),
    );
  return { run, findKey };
}

function check(token: string, algorithm: JwtAlgorithm = 'ES256', now = NOW, ringKey?: RingKey) {
  const { run, findKey } = strategyOver(algorithm, clockAt(now), ringKey);
  return { result: run(token), findKey };
}

function forgeWith(algorithm: JwtAlgorithm, header: Record<string, unknown>, payload = claims()): string {
  return forge(algorithm, keys[algorithm].forging, header, payload);
}

function forgeValid(overrides: Record<string, unknown> = {}, algorithm: JwtAlgorithm = 'ES256'): string {
  return forgeWith(algorithm, { typ: 'at+jwt', kid: keys[algorithm].ring.kid }, claims(overrides));
}

/** Signs as the service does: AccessTokens over @nestjs/jwt, with the given key as the ring's current one. */
function mint(algorithm: JwtAlgorithm, userId = randomUUID(), familyId = randomUUID()): string {
  const tokens = new AccessTokens(
    config(algorithm),
    { signingKey: keys[algorithm].ring } as unknown as SigningKeys,
    new JwtService(),
    clockAt(NOW),
  );
  return tokens.mint({ id: userId, role: 'user', revokedBefore: null, tokensRevokedBefore: null }, familyId)
    .token;
}

const INVALID = { ok: false, code: 'TOKEN_INVALID' };
const EXPIRED = { ok: false, code: 'TOKEN_EXPIRED' };

describe('access tokens: @nestjs/jwt signs, the passport-jwt strategy verifies', () => {
  it.each(ALGORITHMS)('%s: signs an at+jwt that verifies, and refuses tampering', async (algorithm) => {
    const { ring } = keys[algorithm];
    const userId = randomUUID();
    const familyId = randomUUID();
    const token = mint(algorithm, userId, familyId);
    expect(decodePart(token, 0)).toEqual({ alg: algorithm, typ: 'at+jwt', kid: ring.kid });
    const minted = decodePart(token, 1);
    expect(minted).toEqual({
      iss: 'https://auth.test.example',
      aud: 'api',
      sub: userId,
      role: 'user',
      sid: familyId,
      jti: expect.any(String),
      amr: ['pwd'],
      iat: NOW,
      exp: NOW + TTL,
    });
    await expect(check(token, algorithm).result).resolves.toEqual({
      ok: true,
      userId,
      sessionId: familyId,
      expiresAt: new Date((NOW + TTL) * 1000),
    });

    const [head, , signature] = token.split('.');
    const edited = `${head}.${b64({ ...minted, role: 'admin' })}.${signature}`;
    await expect(check(edited, algorithm).result).resolves.toEqual(INVALID);
    await expect(check(token.slice(0, -4), algorithm).result).resolves.toEqual(INVALID);
    await expect(check(`${token.split('.').slice(0, 2).join('.')}.`, algorithm).result).resolves.toEqual(
      INVALID,
    );
  });

  it('signs ES256 in the JOSE r||s form that node:crypto and the JWKS key verify', () => {
    const { ring } = keys.ES256;
    const token = mint('ES256');
    const [head, payload, signature] = token.split('.');
    const publicKey = createPublicKey({ key: ring.jwk as JsonWebKey, format: 'jwk' });
    const data = Buffer.from(`${head}.${payload}`);
    expect(
      verify(
        'sha256',
        data,
        { key: publicKey, dsaEncoding: 'ieee-p1363' },
        Buffer.from(signature, 'base64url'),
      ),
    ).toBe(true);
  });

  it.each(ALGORITHMS)('%s: accepts a token forged independently with node:crypto', async (algorithm) => {
    await expect(check(forgeValid({}, algorithm), algorithm).result).resolves.toMatchObject({ ok: true });
  });

  describe('refuses with TOKEN_INVALID, before any key is chosen,', () => {
    const kid = () => keys.ES256.ring.kid;
    const cases: [string, () => string][] = [
      ...['none', 'None', 'NONE', 'nOnE'].map((alg): [string, () => string] => [
        `alg ${alg}`,
        () => `${b64({ alg, typ: 'at+jwt', kid: kid() })}.${b64(claims())}.`,
      ]),
      ['alg es256', () => `${b64({ alg: 'es256', typ: 'at+jwt', kid: kid() })}.${b64(claims())}.AA`],
      ['an alg that is not a string', () => `${b64({ alg: ['ES256'], typ: 'at+jwt', kid: kid() })}.e30.AA`],
      ['typ JWT', () => forgeWith('ES256', { typ: 'JWT', kid: kid() })],
      ['typ application/at+jwt', () => forgeWith('ES256', { typ: 'application/at+jwt', kid: kid() })],
      ['typ AT+JWT', () => forgeWith('ES256', { typ: 'AT+JWT', kid: kid() })],
      ['no typ', () => forgeWith('ES256', { kid: kid() })],
      ['no kid', () => forgeWith('ES256', { typ: 'at+jwt' })],
      ['a kid that is not a string', () => forgeWith('ES256', { typ: 'at+jwt', kid: 1 })],
      ...['jku', 'jwk', 'x5u', 'x5c', 'x5t', 'x5t#S256'].map((name): [string, () => string] => [
        `a ${name} header`,
        () => forgeWith('ES256', { typ: 'at+jwt', kid: kid(), [name]: 'x' }),
      ]),
      ['a crit header', () => forgeWith('ES256', { typ: 'at+jwt', kid: kid(), crit: ['exp'], exp: 1 })],
      [
        'an unencoded payload (b64: false)',
        () => forgeWith('ES256', { typ: 'at+jwt', kid: kid(), crit: ['b64'], b64: false }),
      ],
    ];

    it.each(cases)('%s', async (_label, build) => {
      const { result, findKey } = check(build());
      await expect(result).resolves.toEqual(INVALID);
      expect(findKey).not.toHaveBeenCalled();
    });
  });

  describe('refuses foreign keys and algorithms with TOKEN_INVALID', () => {
    const attackerKey = () => createPrivateKey(generateKeyMaterial('ES256'));
    const cases: [string, () => string][] = [
      ['an unknown kid', () => forgeWith('ES256', { typ: 'at+jwt', kid: 'unknown' })],
      ['kid ../../x', () => forgeWith('ES256', { typ: 'at+jwt', kid: '../../x' })],
      [
        'another key under the right kid',
        () => forge('ES256', attackerKey(), { typ: 'at+jwt', kid: keys.ES256.ring.kid }, claims()),
      ],
      [
        'HS256 with the public key JWK under the right kid',
        () =>
          forge(
            'HS256',
            JSON.stringify(keys.ES256.ring.jwk),
            { typ: 'at+jwt', kid: keys.ES256.ring.kid },
            claims(),
          ),
      ],
      [
        'HS256 with the public key PEM under the right kid',
        () =>
          forge(
            'HS256',
            createPublicKey(keys.ES256.forging).export({ format: 'pem', type: 'spki' }).toString(),
            { typ: 'at+jwt', kid: keys.ES256.ring.kid },
            claims(),
          ),
      ],
      ...(['RS256', 'HS256'] as JwtAlgorithm[]).map((algorithm): [string, () => string] => [
        `${algorithm} under the right kid`,
        () => forgeWith(algorithm, { typ: 'at+jwt', kid: keys.ES256.ring.kid }),
      ]),
      [
        'EdDSA under the right kid',
        () =>
          forge(
            'EdDSA',
            generateKeyPairSync('ed25519').privateKey,
            { typ: 'at+jwt', kid: keys.ES256.ring.kid },
            claims(),
          ),
      ],
    ];

    it.each(cases)('%s', async (_label, build) => {
      await expect(check(build()).result).resolves.toEqual(INVALID);
    });

    it('refuses a ring key of another algorithm under its own kid', async () => {
      const rsa = keys.RS256.ring;
      const token = forge(
        'RS256',
        keys.RS256.forging,
        { alg: 'ES256', typ: 'at+jwt', kid: rsa.kid },
        claims(),
      );
      await expect(check(token, 'ES256', NOW, rsa).result).resolves.toEqual(INVALID);
    });

    it('refuses an HS256 token signed with another secret', async () => {
      const token = forge(
        'HS256',
        'another-secret-of-thirty-two-chars!!',
        {
          typ: 'at+jwt',
          kid: keys.HS256.ring.kid,
        },
        claims(),
      );
      await expect(check(token, 'HS256').result).resolves.toEqual(INVALID);
    });
  });

  describe('checks the claims', () => {
    it.each<[string, Record<string, unknown>]>([
      ['a wrong issuer', { iss: 'https://evil.example' }],
      ['no issuer', { iss: undefined }],
      ['a wrong audience', { aud: 'other' }],
      ['an audience list without ours', { aud: ['other', 'more'] }],
      ['a sub that is not a uuid', { sub: "1' OR '1'='1" }],
      ['no sub', { sub: undefined }],
      ['a sid that is not a uuid', { sid: 'family' }],
      ['no jti', { jti: undefined }],
      ['an unknown role', { role: 'root' }],
      ['no exp', { exp: undefined }],
      ['no iat', { iat: undefined }],
      ['a fractional iat', { iat: NOW - 0.5 }],
      ['an exp that is a string', { exp: String(NOW + 60) }],
      ['iat beyond the leeway in the future', { iat: NOW + LEEWAY + 1, exp: NOW + 900 }],
      ['nbf beyond the leeway in the future', { nbf: NOW + LEEWAY + 1 }],
      ['an nbf that is not a number', { nbf: 'now' }],
      ['an amr that is not a list', { amr: 'otp' }],
      ['an amr with a method the service never issues', { amr: ['pwd', 'hwk'] }],
    ])('refuses %s with TOKEN_INVALID', async (_label, overrides) => {
      await expect(check(forgeValid(overrides)).result).resolves.toEqual(INVALID);
    });

    it.each<[string, Record<string, unknown>]>([
      ['an audience list with ours', { aud: ['other', 'api'] }],
      ['iat and nbf in the future within the leeway', { iat: NOW + LEEWAY, nbf: NOW + LEEWAY }],
      ['exp past within the leeway', { iat: NOW - 100, exp: NOW - LEEWAY + 1 }],
      ['a lifetime of exactly ACCESS_TOKEN_TTL', { iat: NOW - 10, exp: NOW - 10 + TTL }],
      ['the admin role', { role: 'admin' }],
      ['a second factor in amr', { amr: ['pwd', 'otp'] }],
      ['no amr (minted before second factors existed)', { amr: undefined }],
    ])('accepts %s', async (_label, overrides) => {
      await expect(check(forgeValid(overrides)).result).resolves.toMatchObject({ ok: true });
    });

    it('says TOKEN_EXPIRED for a correctly signed token past exp and the leeway', async () => {
      await expect(check(forgeValid({ iat: NOW - 100, exp: NOW - LEEWAY })).result).resolves.toEqual(EXPIRED);
      await expect(check(forgeValid({ iat: NOW - 1500, exp: NOW - 600 })).result).resolves.toEqual(EXPIRED);
    });

    it('says TOKEN_INVALID for a correctly signed token living longer than ACCESS_TOKEN_TTL', async () => {
      const tenYears = 10 * 365 * 24 * 3600;
      await expect(check(forgeValid({ iat: NOW - 10, exp: NOW - 10 + tenYears })).result).resolves.toEqual(
        INVALID,
      );
      await expect(check(forgeValid({ iat: NOW - 10, exp: NOW - 10 + TTL + 1 })).result).resolves.toEqual(
        INVALID,
      );
      // Expired as well: still not TOKEN_EXPIRED, which is said only of an otherwise valid token.
      await expect(check(forgeValid({ iat: NOW - 4000, exp: NOW - 600 })).result).resolves.toEqual(INVALID);
    });

    it.each<[string, Record<string, unknown>]>([
      ['a wrong issuer', { iss: 'https://evil.example' }],
      ['a wrong audience', { aud: 'other' }],
      ['nbf in the future', { nbf: NOW + 600 }],
      ['a sub that is not a uuid', { sub: 'x' }],
      ['an unknown role', { role: 'root' }],
      ['iat in the future', { iat: NOW + 600 }],
      ['no jti', { jti: undefined }],
    ])('says TOKEN_INVALID, not TOKEN_EXPIRED, for an expired token with %s', async (_label, overrides) => {
      await expect(
        check(forgeValid({ iat: NOW - 1500, exp: NOW - 600, ...overrides })).result,
      ).resolves.toEqual(INVALID);
    });

    it('says TOKEN_INVALID for an expired token with a bad signature or header', async () => {
      const expired = forgeValid({ iat: NOW - 1500, exp: NOW - 600 });
      await expect(check(expired.slice(0, -4)).result).resolves.toEqual(INVALID);
      const typ = forgeWith(
        'ES256',
        { typ: 'JWT', kid: keys.ES256.ring.kid },
        claims({ iat: NOW - 1500, exp: NOW - 600 }),
      );
      await expect(check(typ).result).resolves.toEqual(INVALID);
    });
  });

  it.each([
    '',
    'a.b',
    'a.b.c.d',
    'a.b.',
    '..',
    'e30.e30.e30',
    'W10.e30.AA',
    'e30.W10.AA',
    'bnVsbA.bnVsbA.AA',
    'a b.c.d',
    '%00%ff.e30.AA',
    'eyJhbGciOiJFUzI1NiJ9.@@@.x',
    `${'a'.repeat(6000)}.b.c`,
  ])('resolves %p to TOKEN_INVALID without throwing', async (token) => {
    await expect(check(token).result).resolves.toEqual(INVALID);
  });

  it('refuses a correctly signed token whose payload is not a JSON object', async () => {
    const kid = keys.HS256.ring.kid;
    for (const payload of ['[]', 'null', '"x"', 'not json']) {
      const input = `${b64({ alg: 'HS256', typ: 'at+jwt', kid })}.${b64(payload)}`;
      const signature = createHmac('sha256', keys.HS256.forging).update(input).digest('base64url');
      await expect(check(`${input}.${signature}`, 'HS256').result).resolves.toEqual(INVALID);
    }
  });

  describe('the verified-token cache in the strategy', () => {
    it('serves a token verified before without choosing a key again, and still checks revocation', async () => {
      const revoked = new Set<string>();
      const { run, findKey } = strategyOver('ES256', clockAt(NOW), undefined, revoked);
      const familyId = randomUUID();
      const token = forgeValid({ sid: familyId });
      await expect(run(token)).resolves.toMatchObject({ ok: true, sessionId: familyId });
      await expect(run(token)).resolves.toMatchObject({ ok: true, sessionId: familyId });
      expect(findKey).toHaveBeenCalledTimes(1);
      revoked.add(familyId);
      await expect(run(token)).resolves.toEqual({ ok: false, code: 'TOKEN_REVOKED' });
    });

    it('lets a cached token expire with the clock, leeway included', async () => {
      let now = NOW;
      const clock = { now: () => now * 1000, nowSeconds: () => now };
      const { run } = strategyOver('ES256', clock);
      const token = forgeValid({ iat: NOW, exp: NOW + TTL });
      await expect(run(token)).resolves.toMatchObject({ ok: true });
      now = NOW + TTL + LEEWAY - 1;
      await expect(run(token)).resolves.toMatchObject({ ok: true });
      now = NOW + TTL + LEEWAY;
      await expect(run(token)).resolves.toEqual(EXPIRED);
    });

    it('never caches a refusal: the same string is refused again, key lookup and all', async () => {
      const { run, findKey } = strategyOver('ES256', clockAt(NOW));
      const token = forgeValid({ iat: NOW - 10, exp: NOW - 10 + 10 * 365 * 24 * 3600 });
      await expect(run(token)).resolves.toEqual(INVALID);
      await expect(run(token)).resolves.toEqual(INVALID);
      expect(findKey).toHaveBeenCalledTimes(2);
    });
  });
});
