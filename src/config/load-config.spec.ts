import { generateKeyPairSync, KeyObject } from 'node:crypto';
import { ConfigError, loadConfig } from './load-config';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('loadConfig', () => {
  it('applies the contract defaults', () => {
    const config = loadConfig({});
    expect(config.http).toMatchObject({ host: '127.0.0.1', port: 3000, trustProxy: false, corsOrigins: [] });
    expect(config.session).toMatchObject({
      idleTtlSeconds: 86400,
      absoluteTtlSeconds: 604800,
      cookieSecure: false,
      sameSite: 'lax',
    });
    expect(config.token).toMatchObject({
      algorithm: 'ES256',
      audience: 'api',
      issuer: 'http://127.0.0.1:3000',
      accessTtlSeconds: 900,
      refreshTtlSeconds: 2592000,
      refreshIdleTtlSeconds: 604800,
      reuseGraceSeconds: 10,
    });
    expect(config.auth).toMatchObject({ bcryptCost: 12, loginMaxFailures: 5 });
    expect(config.database).toEqual({ url: undefined, dataDir: './.data', poolSize: 20 });
    expect(config.redis).toBeUndefined();
    expect(config.audit).toEqual({ retentionSeconds: 30 * 86400 });
  });

  it.each([
    ['PORT', 'abc'],
    ['BCRYPT_COST', '3'],
    ['BCRYPT_COST', '16'],
    ['SESSION_IDLE_TTL', '1w'],
    ['ACCESS_TOKEN_TTL', '-1'],
    ['JWT_ALGORITHM', 'none'],
    ['JWT_ALGORITHM', 'EdDSA'],
    ['COOKIE_SAMESITE', 'none'],
    ['COOKIE_SAMESITE', 'always'],
    ['COOKIE_SECURE', 'maybe'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_POOL_SIZE', '1'],
    ['REDIS_URL', 'not a url'],
    ['CORS_ORIGINS', 'app.example.com'],
    ['TRUST_PROXY', 'everyone'],
    ['LOG_LEVEL', 'loud'],
    ['SESSION_SECRET', 'changeme'],
    ['AUDIT_RETENTION', '30 days'],
    ['AUDIT_RETENTION', '0'],
    ['MAIL_URL', 'https://smtp.example.com'],
    ['MAIL_FROM', 'two@at@example.com'],
    ['FRONTEND_URL', 'ftp://app.example.com'],
    ['PASSWORD_RESET_TTL', '30x'],
    ['EMAIL_VERIFY_TTL', '0'],
    ['REQUIRE_VERIFIED_EMAIL', 'perhaps'],
    ['MAIL_POLL_INTERVAL_MS', '0'],
    ['MAIL_RETRY_BASE_MS', '60000'],
    ['MAIL_RETRY_FOR', '12h'],
    ['MFA_ENCRYPTION_KEY', 'changeme'],
    ['MFA_ENCRYPTION_KEY', 'c2hvcnQ='],
    ['MFA_ENCRYPTION_KEY', '0'.repeat(64)],
    ['MFA_PREVIOUS_ENCRYPTION_KEYS', 'too-short'],
  ])('names %s when it is %p', (name, value) => {
    expect(problemsOf({ [name]: value }).join('\n')).toContain(name);
  });

  it('refuses production without secrets, naming each', () => {
    const problems = problemsOf({ NODE_ENV: 'production' }).join('\n');
    expect(problems).toContain('SESSION_SECRET');
    expect(problems).toContain('JWT_PRIVATE_KEY');
    expect(problems).toContain('MAIL_URL');
    expect(problems).toContain('MFA_ENCRYPTION_KEY');
  });

  it('writes mail to files by default and links to the service itself', () => {
    const { mail } = loadConfig({ PORT: '8080' });
    expect(mail).toMatchObject({
      url: undefined,
      frontendUrl: 'http://127.0.0.1:8080',
      passwordResetTtlSeconds: 1800,
      emailVerifyTtlSeconds: 86400,
      requireVerifiedEmail: false,
      retryForSeconds: 172800,
    });
    expect(mail.retryBaseMs).toBeLessThanOrEqual(30_000);
    expect(loadConfig({ FRONTEND_URL: 'https://app.example.com/' }).mail.frontendUrl).toBe(
      'https://app.example.com',
    );
  });

  describe('JWT key material, current and retired', () => {
    const pem = (key: KeyObject) =>
      key.export(key.type === 'private' ? { format: 'pem', type: 'pkcs8' } : { format: 'pem', type: 'spki' });
    const ec = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const production = {
      NODE_ENV: 'production',
      SESSION_SECRET: 'a'.repeat(40),
      JWT_ALGORITHM: 'HS256',
      JWT_SECRET: 'b'.repeat(40),
      MAIL_URL: 'smtps://user:pass@smtp.example.com:465',
      MFA_ENCRYPTION_KEY: 'ab'.repeat(16) + 'cd'.repeat(16),
    };

    it('refuses production started with a retired HS256 secret `secret`, naming the variable', () => {
      const problems = problemsOf({ ...production, JWT_PREVIOUS_SECRETS: 'secret' });
      expect(problems).toEqual(['JWT_PREVIOUS_SECRETS: entry 1 is a placeholder, not a secret']);
    });

    it.each([
      ['a placeholder among good ones', `${'c'.repeat(40)}||changeme`, 'entry 2 is a placeholder'],
      ['a short one', 'short-but-not-a-placeholder', 'entry 1 must be at least 32 characters'],
    ])('refuses retired secrets with %s', (_label, value, problem) => {
      expect(problemsOf({ ...production, JWT_PREVIOUS_SECRETS: value }).join('\n')).toContain(
        `JWT_PREVIOUS_SECRETS: ${problem}`,
      );
    });

    it('keeps good retired secrets', () => {
      const config = loadConfig({
        ...production,
        JWT_PREVIOUS_SECRETS: `${'c'.repeat(40)}||${'d'.repeat(32)}`,
      });
      expect(config.token.previousSecrets).toEqual(['c'.repeat(40), 'd'.repeat(32)]);
    });

    describe('ES256 and RS256 keys', () => {
      const signing = ec();
      const base = {
        ...production,
        JWT_ALGORITHM: 'ES256',
        JWT_SECRET: '',
        JWT_PRIVATE_KEY: String(pem(signing.privateKey)),
      };

      it.each<[string, () => string, string]>([
        ['a placeholder', () => 'changeme', 'entry 1 must be a PEM public key'],
        [
          'a private key',
          () => String(pem(ec().privateKey)),
          'entry 1 must be a PEM public key, not a private one',
        ],
        [
          'a key of another curve',
          () => String(pem(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey)),
          'entry 1 must be a P-256 EC key',
        ],
        [
          'an RSA key under ES256',
          () => String(pem(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey)),
          'entry 1 must be a P-256 EC key',
        ],
      ])('refuses a retired public key that is %s', (_label, value, problem) => {
        expect(problemsOf({ ...base, JWT_PREVIOUS_PUBLIC_KEYS: value() }).join('\n')).toContain(
          `JWT_PREVIOUS_PUBLIC_KEYS: ${problem}`,
        );
      });

      it('refuses a short RSA key, retired or current, naming the variable', () => {
        const short = generateKeyPairSync('rsa', { modulusLength: 1024 });
        const rsa = { ...base, JWT_ALGORITHM: 'RS256' };
        expect(problemsOf({ ...rsa, JWT_PRIVATE_KEY: String(pem(short.privateKey)) }).join('\n')).toContain(
          'JWT_PRIVATE_KEY: must be an RSA key of at least 2048 bits',
        );
        const current = generateKeyPairSync('rsa', { modulusLength: 2048 });
        const problems = problemsOf({
          ...rsa,
          JWT_PRIVATE_KEY: String(pem(current.privateKey)),
          JWT_PREVIOUS_PUBLIC_KEYS: `${String(pem(current.publicKey))},${String(pem(short.publicKey))}`,
        });
        expect(problems).toEqual([
          'JWT_PREVIOUS_PUBLIC_KEYS: entry 2 must be an RSA key of at least 2048 bits for JWT_ALGORITHM=RS256',
        ]);
      });

      it('refuses a current key that is a placeholder', () => {
        expect(problemsOf({ ...base, JWT_PRIVATE_KEY: 'changeme' }).join('\n')).toContain(
          'JWT_PRIVATE_KEY: must be a PEM private key',
        );
      });

      it('keeps good retired public keys, in either list form', () => {
        const [one, two] = [ec(), ec()].map((pair) => String(pem(pair.publicKey)));
        expect(
          loadConfig({ ...base, JWT_PREVIOUS_PUBLIC_KEYS: `${one},${two}` }).token.previousPublicKeys,
        ).toHaveLength(2);
        expect(
          loadConfig({ ...base, JWT_PREVIOUS_PUBLIC_KEYS: `${one}||${two}` }).token.previousPublicKeys,
        ).toHaveLength(2);
      });
    });
  });

  it('reads MFA keys as hex or base64, the current one and the retired ones', () => {
    const hex = 'ab'.repeat(16) + 'cd'.repeat(16);
    const base64 = Buffer.alloc(32, 7).fill(9, 0, 1).toString('base64');
    const config = loadConfig({ MFA_ENCRYPTION_KEY: hex, MFA_PREVIOUS_ENCRYPTION_KEYS: base64 });
    expect(config.mfa.encryptionKey).toEqual(Buffer.from(hex, 'hex'));
    expect(config.mfa.previousEncryptionKeys).toEqual([Buffer.from(base64, 'base64')]);
    expect(config.mfa.issuer).toBe('Auth service');
  });

  it('turns on secure cookies in production', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      SESSION_SECRET: 'a'.repeat(40),
      JWT_ALGORITHM: 'HS256',
      JWT_SECRET: 'b'.repeat(40),
      MAIL_URL: 'smtps://user:pass@smtp.example.com:465',
      MFA_ENCRYPTION_KEY: '0123456789abcdef'.repeat(4),
    });
    expect(config.session.cookieSecure).toBe(true);
  });

  it('takes COOKIE_SAMESITE lax, strict, or none with secure cookies only', () => {
    expect(loadConfig({ COOKIE_SAMESITE: 'Strict' }).session.sameSite).toBe('strict');
    expect(loadConfig({ COOKIE_SAMESITE: 'none', COOKIE_SECURE: 'true' }).session.sameSite).toBe('none');
    expect(problemsOf({ COOKIE_SAMESITE: 'none', COOKIE_SECURE: 'false' })).toEqual([
      'COOKIE_SAMESITE: none requires COOKIE_SECURE=true (browsers refuse SameSite=None without Secure)',
    ]);
  });

  it('logs readable lines in a terminal or with LOG_PRETTY, JSON elsewhere', () => {
    expect(loadConfig({}, false).logPretty).toBe(false);
    expect(loadConfig({}, true).logPretty).toBe(true);
    expect(loadConfig({ LOG_PRETTY: 'true' }, false).logPretty).toBe(true);
    expect(loadConfig({ LOG_PRETTY: 'false' }, true).logPretty).toBe(false);
    expect(problemsOf({ LOG_PRETTY: 'colour' }).join()).toContain('LOG_PRETTY');
  });

  it('parses durations, origins and proxy trust', () => {
    const config = loadConfig({
      SESSION_IDLE_TTL: '30m',
      CORS_ORIGINS: 'https://a.example.com, http://localhost:5173',
      TRUST_PROXY: '10.0.0.0/8,loopback',
      AUDIT_RETENTION: '90d',
    });
    expect(config.session.idleTtlSeconds).toBe(1800);
    expect(config.audit.retentionSeconds).toBe(90 * 86400);
    expect(config.http.corsOrigins).toEqual(['https://a.example.com', 'http://localhost:5173']);
    expect(config.http.trustProxy).toEqual(['10.0.0.0/8', 'loopback']);
  });
});
