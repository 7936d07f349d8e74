export type JwtAlgorithm = 'ES256' | 'EdDSA' | 'RS256' | 'HS256';
export type TrustProxy = false | number | string[];

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
    sameSite: 'lax' | 'strict';
  };
  token: {
    algorithm: JwtAlgorithm;
    issuer: string;
    audience: string;
    accessTtlSeconds: number;
    refreshTtlSeconds: number;
    refreshIdleTtlSeconds: number;
    reuseGraceSeconds: number;
    /** PEM private key (ES256, EdDSA, RS256); undefined in development: generated and kept. */
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
