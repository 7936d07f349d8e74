export type JwtAlgorithm = 'ES256' | 'RS256' | 'HS256';
export type TrustProxy = false | number | string[];
export type SameSite = 'lax' | 'strict' | 'none';

export interface RedisConfig {
  url?: string;
  sentinels?: { host: string; port: number }[];
  sentinelName?: string;
  clusterNodes?: string[];
  keyPrefix: string;
}

/** Everything the service reads from its environment, validated once at start. */
export interface AppConfig {
  production: boolean;
  logLevel: string;
  /** One readable line per entry instead of JSON: LOG_PRETTY, by default on when stdout is a terminal. */
  logPretty: boolean;
  http: {
    host: string;
    port: number;
    publicUrl: string;
    trustProxy: TrustProxy;
    corsOrigins: string[];
    bodyLimitBytes: number;
    metricsEnabled: boolean;
  };
  database: {
    /** Undefined selects the embedded PGlite database under dataDir. */
    url?: string;
    dataDir: string;
    /** Connections each instance keeps to the database for requests. */
    poolSize: number;
  };
  /** Undefined: whatever would live in Redis lives in the database. */
  redis?: RedisConfig;
  session: {
    /** Undefined in development: generated once and kept in the database. */
    secret?: string;
    idleTtlSeconds: number;
    absoluteTtlSeconds: number;
    cookieSecure: boolean;
    /** The session cookie's SameSite; `none` (cross-site frontends) only with secure cookies. */
    sameSite: SameSite;
  };
  token: {
    algorithm: JwtAlgorithm;
    issuer: string;
    audience: string;
    accessTtlSeconds: number;
    refreshTtlSeconds: number;
    refreshIdleTtlSeconds: number;
    reuseGraceSeconds: number;
    /** PEM private key (ES256, RS256); undefined in development: generated and kept. */
    privateKey?: string;
    /** PEM public keys of retired signing keys whose tokens may still be live. */
    previousPublicKeys: string[];
    /** HS256 secret; undefined in development: generated and kept. */
    secret?: string;
    previousSecrets: string[];
  };
  auth: {
    bcryptCost: number;
    loginMaxFailures: number;
    /** Per-client-IP limits; see docs/security.md for why each number was chosen. */
    limits: {
      /** Failed logins from one IP in a day, whatever the accounts. */
      ipFailuresPerDay: number;
      /** Distinct accounts one IP may fail to log in to in an hour (password spraying). */
      ipAccountsPerHour: number;
      registrationsPerHour: number;
      refreshesPerMinute: number;
    };
    adminEmail?: string;
    adminPassword?: string;
  };
  audit: {
    /** How long a deleted user's audit entries keep their IP and user agent. */
    retentionSeconds: number;
  };
  mail: {
    /** smtp:// or smtps:// URL; undefined (development only): each mail is written under DATA_DIR/mail/. */
    url?: string;
    from: string;
    /** Where mailed links point, without a trailing slash. */
    frontendUrl: string;
    passwordResetTtlSeconds: number;
    emailVerifyTtlSeconds: number;
    requireVerifiedEmail: boolean;
    /** Per hour: mails one client IP may cause, and mails one address may receive, of each kind. */
    ipMailsPerHour: number;
    addressMailsPerHour: number;
    /** How often each instance's worker looks for due mail. */
    pollIntervalMs: number;
    /** The wait before the first retry; each further retry waits twice as long, up to an hour. */
    retryBaseMs: number;
    /** How long a mail is retried before it is given up. */
    retryForSeconds: number;
  };
  mfa: {
    /** The authenticator app's label for this service (the otpauth URL's issuer). */
    issuer: string;
    /** 32 bytes that encrypt TOTP secrets; undefined in development: generated and kept in the database. */
    encryptionKey?: Buffer;
    /** Retired keys, still accepted for decryption until every secret is re-encrypted under the current one. */
    previousEncryptionKeys: Buffer[];
  };
}

/** The DI token under which the validated configuration is provided. */
export const APP_CONFIG = Symbol('APP_CONFIG');
