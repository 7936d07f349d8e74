import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  JsonWebKey,
  KeyObject,
  randomUUID,
  verify,
} from 'node:crypto';
import { b64, decodePart, forge } from '../../test/support/tokens';
import type { JwtAlgorithm } from '../config/app-config';
import { AccessTokenClaims, signAccessToken } from './access-tokens';
import { verifyAccessToken, VerifierSettings } from './access-token-verifier';
import { generateKeyMaterial, RingKey, signingKeyFrom } from './key-material';

const NOW = 1_700_000_000;
const LEEWAY = 5;
const ALGORITHMS: JwtAlgorithm[] = ['ES256', 'EdDSA', 'RS256', 'HS256'];

interface TestKey {
  ring: RingKey & { signing: NonNullable<RingKey['signing']> };
  /** What node:crypto forges with: the PKCS#8 key, or the HS256 secret string. */
  forging: KeyObject | string;
}

const keys = {} as Record<JwtAlgorithm, TestKey>;

beforeAll(async () => {
  for (const algorithm of ALGORITHMS) {
    const material = generateKeyMaterial(algorithm);
    const ring = (await signingKeyFrom(algorithm, material)) as TestKey['ring'];
    keys[algorithm] = { ring, forging: algorithm === 'HS256' ? material : createPrivateKey(material) };
  }
});

function settings(algorithm: JwtAlgorithm): VerifierSettings {
  return { algorithm, issuer: 'https://auth.test.example', audience: 'api', leewaySeconds: LEEWAY };
}

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

/** The verifier over a ring holding only `algorithm`'s key, as the service's ring does. */
function check(token: string, algorithm: JwtAlgorithm = 'ES256', now = NOW) {
  const { ring } = keys[algorithm];
  const findKey = jest.fn((kid: string) => (kid === ring.kid ? ring : undefined));
  return { result: verifyAccessToken(token, findKey, settings(algorithm), now), findKey };
}

function forgeWith(algorithm: JwtAlgorithm, header: Record<string, unknown>, payload = claims()): string {
  return forge(algorithm, keys[algorithm].forging, header, payload);
}

function forgeValid(overrides: Record<string, unknown> = {}, algorithm: JwtAlgorithm = 'ES256'): string {
  return forgeWith(algorithm, { typ: 'at+jwt', kid: keys[algorithm].ring.kid }, claims(overrides));
}

const INVALID = { ok: false, code: 'TOKEN_INVALID' };
const EXPIRED = { ok: false, code: 'TOKEN_EXPIRED' };

describe('access tokens on jose', () => {
  it.each(ALGORITHMS)('%s: signs an at+jwt that verifies, and refuses tampering', async (algorithm) => {
    const { ring } = keys[algorithm];
    const minted = claims() as unknown as AccessTokenClaims;
    const token = await signAccessToken(ring, minted);
    expect(decodePart(token, 0)).toEqual({ alg: algorithm, typ: 'at+jwt', kid: ring.kid });
    await expect(check(token, algorithm).result).resolves.toEqual({ ok: true, claims: minted });

    const [head, , signature] = token.split('.');
    const edited = `${head}.${b64({ ...minted, role: 'admin' })}.${signature}`;
    await expect(check(edited, algorithm).result).resolves.toEqual(INVALID);
    await expect(check(token.slice(0, -4), algorithm).result).resolves.toEqual(INVALID);
    await expect(check(`${token.split('.').slice(0, 2).join('.')}.`, algorithm).result).resolves.toEqual(
      INVALID,
    );
  });

  it('signs ES256 in the JOSE r||s form that node:crypto and the JWKS key verify', async () => {
    const { ring } = keys.ES256;
    const token = await signAccessToken(ring, claims() as unknown as AccessTokenClaims);
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
      ...(['EdDSA', 'RS256', 'HS256'] as JwtAlgorithm[]).map((algorithm): [string, () => string] => [
        `${algorithm} under the right kid`,
        () => forgeWith(algorithm, { typ: 'at+jwt', kid: keys.ES256.ring.kid }),
      ]),
    ];

    it.each(cases)('%s', async (_label, build) => {
      await expect(check(build()).result).resolves.toEqual(INVALID);
    });

    it('refuses a ring key of another algorithm under its own kid', async () => {
      const ed = keys.EdDSA.ring;
      const token = forgeWith('EdDSA', { typ: 'at+jwt', kid: ed.kid });
      const result = verifyAccessToken(token, () => ed, settings('ES256'), NOW);
      await expect(result).resolves.toEqual(INVALID);
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
      ['exp past within the leeway', { exp: NOW - LEEWAY + 1 }],
      ['the admin role', { role: 'admin' }],
      ['a second factor in amr', { amr: ['pwd', 'otp'] }],
      ['no amr (minted before second factors existed)', { amr: undefined }],
    ])('accepts %s', async (_label, overrides) => {
      await expect(check(forgeValid(overrides)).result).resolves.toMatchObject({ ok: true });
    });

    it('says TOKEN_EXPIRED for a correctly signed token past exp and the leeway', async () => {
      await expect(check(forgeValid({ exp: NOW - LEEWAY })).result).resolves.toEqual(EXPIRED);
      await expect(check(forgeValid({ iat: NOW - 2000, exp: NOW - 600 })).result).resolves.toEqual(EXPIRED);
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
      await expect(check(forgeValid({ exp: NOW - 600, ...overrides })).result).resolves.toEqual(INVALID);
    });

    it('says TOKEN_INVALID for an expired token with a bad signature or header', async () => {
      const expired = forgeValid({ exp: NOW - 600 });
      await expect(check(expired.slice(0, -4)).result).resolves.toEqual(INVALID);
      const typ = forgeWith('ES256', { typ: 'JWT', kid: keys.ES256.ring.kid }, claims({ exp: NOW - 600 }));
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
});
