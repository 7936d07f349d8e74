import { CryptoKey, errors, JWTHeaderParameters, jwtVerify, JWTPayload } from 'jose';
import type { JwtAlgorithm } from '../config/app-config';
import { ROLES } from '../users/user.entity';
import { ACCESS_TOKEN_TYPE, AccessTokenClaims } from './access-tokens';
import type { RingKey } from './key-material';

export interface VerifierSettings {
  algorithm: JwtAlgorithm;
  issuer: string;
  audience: string;
  leewaySeconds: number;
}

export type Verification =
  { ok: true; claims: AccessTokenClaims } | { ok: false; code: 'TOKEN_INVALID' | 'TOKEN_EXPIRED' };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Headers that point at other keys: a verifier that followed them would let the token choose its own key.
const FOREIGN_KEY_HEADERS = ['jku', 'jwk', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'crit'];
// Far above any token this service mints; nothing longer is worth decoding.
const MAX_TOKEN_LENGTH = 4096;
const INVALID = { ok: false, code: 'TOKEN_INVALID' } as const;

/**
 * Verifies an access token against the service's own keys only, with jose. The header is checked before any
 * key is chosen; TOKEN_EXPIRED is said only of a token that is otherwise valid. Never throws.
 */
export async function verifyAccessToken(
  token: string,
  findKey: (kid: string) => RingKey | undefined,
  settings: VerifierSettings,
  nowSeconds: number,
): Promise<Verification> {
  if (token.length > MAX_TOKEN_LENGTH) return INVALID;
  const keyFor = (header: JWTHeaderParameters): CryptoKey => {
    const key = headerAccepted(header, settings) ? findKey(header.kid) : undefined;
    if (!key || key.algorithm !== settings.algorithm) throw new Error('access token header refused');
    return key.verifying;
  };
  try {
    const { payload } = await jwtVerify(token, keyFor, {
      algorithms: [settings.algorithm],
      issuer: settings.issuer,
      audience: settings.audience,
      requiredClaims: ['sub', 'sid', 'jti', 'role', 'iat', 'exp'],
      clockTolerance: settings.leewaySeconds,
      currentDate: new Date(nowSeconds * 1000),
    });
    return ownClaimsHold(payload, settings, nowSeconds) ? { ok: true, claims: payload } : INVALID;
  } catch (error) {
    // jose checks exp after typ, iss, aud and nbf (pinned by the unit spec), so with the checks jose does not
    // make this token is otherwise valid. Everything else, key and signature errors included, is invalid.
    if (
      error instanceof errors.JWTExpired &&
      error.claim === 'exp' &&
      ownClaimsHold(error.payload, settings, nowSeconds)
    ) {
      return { ok: false, code: 'TOKEN_EXPIRED' };
    }
    return INVALID;
  }
}

/** Exact alg and typ (jose alone would accept `application/at+jwt`), a kid, and nothing that names a key. */
function headerAccepted(
  header: JWTHeaderParameters,
  settings: VerifierSettings,
): header is JWTHeaderParameters & { kid: string } {
  return (
    header.alg === settings.algorithm &&
    header.typ === ACCESS_TOKEN_TYPE &&
    typeof header.kid === 'string' &&
    !FOREIGN_KEY_HEADERS.some((name) => name in header)
  );
}

/** The claims jose does not check: ids, role, whole-second times, and an iat not in the future. */
function ownClaimsHold(
  payload: JWTPayload,
  settings: VerifierSettings,
  nowSeconds: number,
): payload is JWTPayload & AccessTokenClaims {
  return (
    typeof payload.sub === 'string' &&
    UUID.test(payload.sub) &&
    typeof payload.sid === 'string' &&
    UUID.test(payload.sid) &&
    typeof payload.jti === 'string' &&
    (payload.amr === undefined ||
      (Array.isArray(payload.amr) && payload.amr.every((method) => method === 'pwd' || method === 'otp'))) &&
    ROLES.includes(payload.role as AccessTokenClaims['role']) &&
    Number.isInteger(payload.iat) &&
    Number.isInteger(payload.exp) &&
    (payload.iat as number) <= nowSeconds + settings.leewaySeconds
  );
}
