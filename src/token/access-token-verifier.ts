import type { JwtAlgorithm } from '../config/app-config';
import { ROLES } from '../users/user.entity';
import { ACCESS_TOKEN_TYPE, AccessTokenClaims } from './access-tokens';
import { parseJws, verifySignature } from './jws';
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
const INVALID = { ok: false, code: 'TOKEN_INVALID' } as const;

/**
 * Verifies an access token against the service's own keys only. The header is checked before any key is
 * chosen; `exp` is checked last, so TOKEN_EXPIRED is said only of a token that is otherwise valid.
 */
export function verifyAccessToken(
  token: string,
  findKey: (kid: string) => RingKey | undefined,
  settings: VerifierSettings,
  nowSeconds: number,
): Verification {
  const jws = parseJws(token);
  if (!jws) return INVALID;
  const { header, payload } = jws;
  if (header.alg !== settings.algorithm || header.typ !== ACCESS_TOKEN_TYPE) return INVALID;
  if (typeof header.kid !== 'string' || FOREIGN_KEY_HEADERS.some((name) => name in header)) return INVALID;
  const key = findKey(header.kid);
  if (!key || key.algorithm !== settings.algorithm) return INVALID;
  if (!verifySignature(settings.algorithm, key.verifying, jws)) return INVALID;

  const audience = payload.aud;
  const audienceOk = Array.isArray(audience)
    ? audience.includes(settings.audience)
    : audience === settings.audience;
  const claimsOk =
    payload.iss === settings.issuer &&
    audienceOk &&
    typeof payload.sub === 'string' &&
    UUID.test(payload.sub) &&
    typeof payload.sid === 'string' &&
    UUID.test(payload.sid) &&
    typeof payload.jti === 'string' &&
    ROLES.includes(payload.role as AccessTokenClaims['role']) &&
    Number.isInteger(payload.iat) &&
    Number.isInteger(payload.exp) &&
    (payload.nbf === undefined || typeof payload.nbf === 'number');
  if (!claimsOk) return INVALID;
  const claims = payload as unknown as AccessTokenClaims & { nbf?: number };
  if (claims.iat > nowSeconds + settings.leewaySeconds) return INVALID;
  if (claims.nbf !== undefined && claims.nbf > nowSeconds + settings.leewaySeconds) return INVALID;
  if (claims.exp <= nowSeconds - settings.leewaySeconds) return { ok: false, code: 'TOKEN_EXPIRED' };
  return { ok: true, claims };
}
