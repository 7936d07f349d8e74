import { createPrivateKey, createPublicKey, KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { AppConfig, JwtAlgorithm, SameSite, TrustProxy } from './app-config';
import { parseDurationSeconds } from './duration';
import { processEnvironment } from './env-file';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const PLACEHOLDER = /^(change-?me|changeme|secret|password|placeholder|example|todo|xxx+|test)$/i;
const DAY_SECONDS = 24 * 60 * 60;
const ALGORITHMS: JwtAlgorithm[] = ['ES256', 'RS256', 'HS256'];
const SAME_SITE: SameSite[] = ['lax', 'strict', 'none'];

/**
 * Reads and validates the environment (by default the process's, `.env` included). Every bad value is
 * reported by its variable name, and a production start refuses missing or placeholder secrets.
 */
export function loadConfig(
  env: Env = processEnvironment(),
  terminal: boolean = process.stdout.isTTY === true,
): AppConfig {
  const problems: string[] = [];
  const get = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const fail = (name: string, why: string): undefined => {
    problems.push(`${name}: ${why}`);
    return undefined;
  };

  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!(value >= min && value <= max)) fail(name, `must be an integer from ${min} to ${max}, got "${raw}"`);
    return value >= min && value <= max ? value : fallback;
  };
  const duration = (name: string, fallback: string): number => {
    const raw = get(name) ?? fallback;
    const seconds = parseDurationSeconds(raw);
    if (seconds === undefined) fail(name, `must be a duration such as 90, 30s, 15m, 24h or 7d, got "${raw}"`);
    return seconds ?? parseDurationSeconds(fallback)!;
  };
  const boolean = (name: string, fallback: boolean): boolean => {
    const raw = get(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['true', '1', 'yes', 'on'].includes(raw)) return true;
    if (['false', '0', 'no', 'off'].includes(raw)) return false;
    fail(name, `must be true or false, got "${raw}"`);
    return fallback;
  };
  const url = (name: string, protocols: string[]): string | undefined => {
    const raw = get(name);
    if (raw === undefined) return undefined;
    try {
      const parsed = new URL(raw);
      if (!protocols.includes(parsed.protocol)) return fail(name, `must use ${protocols.join(' or ')}`);
      return raw;
    } catch {
      return fail(name, 'is not a valid URL');
    }
  };

  const nodeEnv = get('NODE_ENV') ?? 'development';
  if (!['development', 'production', 'test'].includes(nodeEnv)) {
    fail('NODE_ENV', `must be development, production or test, got "${nodeEnv}"`);
  }
  const production = nodeEnv === 'production';

  const host = get('HOST') ?? '127.0.0.1';
  if (host !== 'localhost' && isIP(host) === 0)
    fail('HOST', `must be an IP address or localhost, got "${host}"`);
  const port = integer('PORT', 3000, 0, 65535);

  const corsOrigins = (get('CORS_ORIGINS') ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean)
    .map((origin) => {
      try {
        const parsed = new URL(origin);
        if (!['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin.replace(/\/$/, '')) {
          throw new Error();
        }
        return parsed.origin;
      } catch {
        fail('CORS_ORIGINS', `"${origin}" is not an origin such as https://app.example.com`);
        return origin;
      }
    });

  const publicUrl = url('PUBLIC_URL', ['http:', 'https:']) ?? `http://${host}:${port}`;

  const cookieSecure = boolean('COOKIE_SECURE', production);
  const sameSiteRaw = (get('COOKIE_SAMESITE') ?? 'lax').toLowerCase();
  const sameSite = SAME_SITE.find((value) => value === sameSiteRaw) ?? 'lax';
  if (sameSite !== sameSiteRaw) fail('COOKIE_SAMESITE', `must be lax, strict or none, got "${sameSiteRaw}"`);
  // Browsers drop a SameSite=None cookie that is not Secure: the session would silently never stick.
  if (sameSite === 'none' && !cookieSecure) {
    fail(
      'COOKIE_SAMESITE',
      'none requires COOKIE_SECURE=true (browsers refuse SameSite=None without Secure)',
    );
  }

  const algorithmRaw = get('JWT_ALGORITHM') ?? 'ES256';
  const algorithm = ALGORITHMS.find((alg) => alg.toLowerCase() === algorithmRaw.toLowerCase());
  if (!algorithm) fail('JWT_ALGORITHM', `must be one of ${ALGORITHMS.join(', ')}, got "${algorithmRaw}"`);

  const secretProblem = (value: string, minLength: number): string | undefined => {
    if (PLACEHOLDER.test(value)) return 'is a placeholder, not a secret';
    if (value.length < minLength) return `must be at least ${minLength} characters`;
    return undefined;
  };
  const secret = (name: string, minLength: number): string | undefined => {
    const value = get(name);
    if (value === undefined) return undefined;
    const problem = secretProblem(value, minLength);
    return problem ? fail(name, problem) : value;
  };
  const sessionSecret = secret('SESSION_SECRET', 32);
  const jwtSecret = secret('JWT_SECRET', 32);
  const privateKey = get('JWT_PRIVATE_KEY')?.replace(/\\n/g, '\n');
  if (privateKey !== undefined) {
    const problem = keyProblem(privateKey, 'private', algorithm);
    if (problem) fail('JWT_PRIVATE_KEY', problem);
  }
  const list = (name: string): string[] =>
    (get(name) ?? '')
      .split(/,(?=\s*-----BEGIN)|\|\|/)
      .map((item) => item.replace(/\\n/g, '\n').trim())
      .filter(Boolean);
  // Retired keys still verify tokens: a weak one is as good as a weak current one to whoever forges with it.
  const previousSecrets = list('JWT_PREVIOUS_SECRETS');
  previousSecrets.forEach((value, index) => {
    const problem = secretProblem(value, 32);
    if (problem) fail('JWT_PREVIOUS_SECRETS', `entry ${index + 1} ${problem}`);
  });
  const previousPublicKeys = list('JWT_PREVIOUS_PUBLIC_KEYS');
  previousPublicKeys.forEach((value, index) => {
    const problem = keyProblem(value, 'public', algorithm);
    if (problem) fail('JWT_PREVIOUS_PUBLIC_KEYS', `entry ${index + 1} ${problem}`);
  });

  if (production) {
    if (!sessionSecret && !problems.some((p) => p.startsWith('SESSION_SECRET'))) {
      fail('SESSION_SECRET', 'is required when NODE_ENV=production');
    }
    if (algorithm === 'HS256' && !jwtSecret && !problems.some((p) => p.startsWith('JWT_SECRET'))) {
      fail('JWT_SECRET', 'is required when NODE_ENV=production and JWT_ALGORITHM=HS256');
    }
    if (algorithm && algorithm !== 'HS256' && !privateKey) {
      fail('JWT_PRIVATE_KEY', 'is required when NODE_ENV=production');
    }
  }

  const mfaKey = (name: string, raw: string | undefined): Buffer | undefined => {
    if (raw === undefined) return undefined;
    if (PLACEHOLDER.test(raw)) return fail(name, 'is a placeholder, not a key');
    const key = decodeKey(raw);
    if (!key)
      return fail(name, 'must be 32 random bytes as 64 hex characters or base64 (openssl rand -base64 32)');
    return key;
  };
  const mfaEncryptionKey = mfaKey('MFA_ENCRYPTION_KEY', get('MFA_ENCRYPTION_KEY'));
  const mfaPreviousKeys = (get('MFA_PREVIOUS_ENCRYPTION_KEYS') ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map((item) => mfaKey('MFA_PREVIOUS_ENCRYPTION_KEYS', item))
    .filter((key): key is Buffer => key !== undefined);
  if (production && !get('MFA_ENCRYPTION_KEY')) {
    fail('MFA_ENCRYPTION_KEY', 'is required when NODE_ENV=production');
  }

  const trustProxy = parseTrustProxy(get('TRUST_PROXY'), (why) => fail('TRUST_PROXY', why));

  const redisUrl = url('REDIS_URL', ['redis:', 'rediss:']);
  const sentinels = (get('REDIS_SENTINELS') ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map((item) => {
      const [sentinelHost, sentinelPort] = item.split(':');
      const parsedPort = Number(sentinelPort ?? 26379);
      if (!sentinelHost || !Number.isInteger(parsedPort))
        fail('REDIS_SENTINELS', `"${item}" is not host:port`);
      return { host: sentinelHost, port: parsedPort };
    });
  const clusterNodes = (get('REDIS_CLUSTER_NODES') ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  for (const node of clusterNodes) {
    if (!/^redis(s)?:\/\//.test(node)) fail('REDIS_CLUSTER_NODES', `"${node}" is not a redis:// URL`);
  }
  const sentinelName = get('REDIS_SENTINEL_NAME');
  if (sentinels.length > 0 && !sentinelName) fail('REDIS_SENTINEL_NAME', 'is required with REDIS_SENTINELS');
  const redisConfigured = Boolean(redisUrl) || sentinels.length > 0 || clusterNodes.length > 0;

  const adminEmail = get('ADMIN_EMAIL');
  const adminPassword = get('ADMIN_PASSWORD');
  if (Boolean(adminEmail) !== Boolean(adminPassword)) {
    fail(adminEmail ? 'ADMIN_PASSWORD' : 'ADMIN_EMAIL', 'ADMIN_EMAIL and ADMIN_PASSWORD go together');
  }

  const logLevel = get('LOG_LEVEL') ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    fail(
      'LOG_LEVEL',
      `must be a pino level (fatal, error, warn, info, debug, trace, silent), got "${logLevel}"`,
    );
  }

  const mailUrl = url('MAIL_URL', ['smtp:', 'smtps:']);
  if (production && !mailUrl && !problems.some((p) => p.startsWith('MAIL_URL'))) {
    fail('MAIL_URL', 'is required when NODE_ENV=production (without it mail is only written to files)');
  }
  const mailFrom = get('MAIL_FROM') ?? `Auth service <no-reply@${new URL(publicUrl).hostname}>`;
  const fromAddress = /^(?:[^<>\r\n]*<([^<>\s]+)>|([^<>\s]+))$/.exec(mailFrom);
  if (!fromAddress || !/^[^@\s]+@[^@\s]+$/.test(fromAddress[1] ?? fromAddress[2] ?? '')) {
    fail('MAIL_FROM', `must be an address such as "Example <no-reply@example.com>", got "${mailFrom}"`);
  }
  const frontendUrl = url('FRONTEND_URL', ['http:', 'https:']) ?? publicUrl;

  const config: AppConfig = {
    production,
    logLevel,
    logPretty: boolean('LOG_PRETTY', terminal),
    http: {
      host,
      port,
      publicUrl: publicUrl.replace(/\/$/, ''),
      trustProxy,
      corsOrigins,
      bodyLimitBytes: 16 * 1024,
      metricsEnabled: boolean('METRICS_ENABLED', true),
    },
    database: {
      url: url('DATABASE_URL', ['postgres:', 'postgresql:']),
      dataDir: get('DATA_DIR') ?? './.data',
      poolSize: integer('DATABASE_POOL_SIZE', 20, 2, 1000),
    },
    redis: redisConfigured
      ? {
          url: redisUrl,
          sentinels: sentinels.length > 0 ? sentinels : undefined,
          sentinelName,
          clusterNodes: clusterNodes.length > 0 ? clusterNodes : undefined,
          keyPrefix: get('REDIS_KEY_PREFIX') ?? 'auth:',
        }
      : undefined,
    session: {
      secret: sessionSecret,
      idleTtlSeconds: duration('SESSION_IDLE_TTL', '24h'),
      absoluteTtlSeconds: duration('SESSION_ABSOLUTE_TTL', '7d'),
      cookieSecure,
      sameSite,
    },
    token: {
      algorithm: algorithm ?? 'ES256',
      issuer: get('JWT_ISSUER') ?? publicUrl.replace(/\/$/, ''),
      audience: get('JWT_AUDIENCE') ?? 'api',
      accessTtlSeconds: duration('ACCESS_TOKEN_TTL', '15m'),
      refreshTtlSeconds: duration('REFRESH_TOKEN_TTL', '30d'),
      refreshIdleTtlSeconds: duration('REFRESH_IDLE_TTL', '7d'),
      reuseGraceSeconds: duration('REFRESH_REUSE_GRACE', '10s'),
      privateKey,
      previousPublicKeys,
      secret: jwtSecret,
      previousSecrets,
    },
    auth: {
      bcryptCost: integer('BCRYPT_COST', 12, 4, 15),
      loginMaxFailures: integer('LOGIN_MAX_FAILURES', 5, 1, 1000),
      limits: {
        ipFailuresPerDay: integer('LOGIN_IP_MAX_FAILURES', 100, 1, 1_000_000),
        ipAccountsPerHour: integer('LOGIN_IP_MAX_ACCOUNTS', 20, 1, 1_000_000),
        registrationsPerHour: integer('REGISTER_RATE_LIMIT', 10, 1, 1_000_000),
        refreshesPerMinute: integer('REFRESH_RATE_LIMIT', 60, 1, 1_000_000),
      },
      adminEmail,
      adminPassword,
    },
    audit: {
      retentionSeconds: duration('AUDIT_RETENTION', '30d'),
    },
    mail: {
      url: mailUrl,
      from: mailFrom,
      frontendUrl: frontendUrl.replace(/\/$/, ''),
      passwordResetTtlSeconds: duration('PASSWORD_RESET_TTL', '30m'),
      emailVerifyTtlSeconds: duration('EMAIL_VERIFY_TTL', '24h'),
      requireVerifiedEmail: boolean('REQUIRE_VERIFIED_EMAIL', false),
      ipMailsPerHour: integer('MAIL_IP_RATE_LIMIT', 20, 1, 1_000_000),
      addressMailsPerHour: integer('MAIL_ADDRESS_RATE_LIMIT', 5, 1, 1_000_000),
      pollIntervalMs: integer('MAIL_POLL_INTERVAL_MS', 1000, 10, 60_000),
      // The contract wants the first retry within 30 s.
      retryBaseMs: integer('MAIL_RETRY_BASE_MS', 10_000, 10, 30_000),
      // The contract wants at least 24 h of retries.
      retryForSeconds: duration('MAIL_RETRY_FOR', '48h'),
    },
    mfa: {
      issuer: get('MFA_ISSUER') ?? 'Auth service',
      encryptionKey: mfaEncryptionKey,
      previousEncryptionKeys: mfaPreviousKeys,
    },
  };

  if (config.session.idleTtlSeconds > config.session.absoluteTtlSeconds) {
    fail('SESSION_IDLE_TTL', 'must not be longer than SESSION_ABSOLUTE_TTL');
  }
  if (config.token.refreshIdleTtlSeconds > config.token.refreshTtlSeconds) {
    fail('REFRESH_IDLE_TTL', 'must not be longer than REFRESH_TOKEN_TTL');
  }
  if (config.mail.retryForSeconds < DAY_SECONDS) fail('MAIL_RETRY_FOR', 'must be at least 24h');
  if (config.mail.passwordResetTtlSeconds < 1) fail('PASSWORD_RESET_TTL', 'must be at least 1 second');
  if (config.mail.emailVerifyTtlSeconds < 1) fail('EMAIL_VERIFY_TTL', 'must be at least 1 second');
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * Why a PEM cannot serve as a key of the configured algorithm, or undefined when it can: a P-256 key for
 * ES256, RSA of 2048 bits or more for RS256. The token module refuses the same keys at start; checking here
 * names the variable.
 */
function keyProblem(
  pem: string,
  kind: 'private' | 'public',
  algorithm: JwtAlgorithm | undefined,
): string | undefined {
  // createPublicKey derives a public key from a private PEM too; a retired key's secret half has no business here.
  if (kind === 'public' && pem.includes('PRIVATE KEY')) return 'must be a PEM public key, not a private one';
  let key: KeyObject;
  try {
    key = kind === 'private' ? createPrivateKey(pem) : createPublicKey(pem);
  } catch {
    return `must be a PEM ${kind} key`;
  }
  if (algorithm === undefined || algorithm === 'HS256') return undefined;
  return keyFitProblem(algorithm, key);
}

/** Whether an asymmetric key fits the algorithm; the token module refuses a misfit with this same rule. */
export function keyFitProblem(algorithm: Exclude<JwtAlgorithm, 'HS256'>, key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  if (algorithm === 'ES256') {
    return type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
      ? undefined
      : 'must be a P-256 EC key for JWT_ALGORITHM=ES256';
  }
  if (type !== 'rsa') return 'must be an RSA key for JWT_ALGORITHM=RS256';
  return (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048
    ? undefined
    : 'must be an RSA key of at least 2048 bits for JWT_ALGORITHM=RS256';
}

/** 32 bytes from 64 hex characters or from base64 / base64url; anything else is not an AES-256 key. */
function decodeKey(raw: string): Buffer | undefined {
  const key = /^[0-9a-f]{64}$/i.test(raw)
    ? Buffer.from(raw, 'hex')
    : /^[A-Za-z0-9+/_-]{43}=?$/.test(raw)
      ? Buffer.from(raw, 'base64url')
      : undefined;
  // A key of one repeated byte (all zeros, say) is a placeholder in disguise.
  return key && key.length === 32 && new Set(key).size > 1 ? key : undefined;
}

function parseTrustProxy(raw: string | undefined, fail: (why: string) => void): TrustProxy {
  if (raw === undefined || ['false', 'off', '0', 'no'].includes(raw.toLowerCase())) return false;
  if (/^\d+$/.test(raw)) return Number(raw);
  const subnets = raw.split(',').map((item) => item.trim());
  const named = ['loopback', 'linklocal', 'uniquelocal'];
  for (const subnet of subnets) {
    const [address, bits] = subnet.split('/');
    const family = isIP(address ?? '');
    const validBits = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (!named.includes(subnet) && (family === 0 || !validBits)) {
      fail(
        `must be off, a hop count, or a list of addresses/subnets (loopback, 10.0.0.0/8, …), got "${raw}"`,
      );
      return false;
    }
  }
  return subnets;
}
