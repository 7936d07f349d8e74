import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { PublishedJwk, RingKey, signingKeyFrom, verifyingKeyFrom } from './key-material';
import { loadStoredKeys } from './signing-keys.store';

/** How far a verifier's clock may disagree with the signer's; the contract allows at most 30 s. */
export const CLOCK_LEEWAY_SECONDS = 30;
const RELOAD_INTERVAL_MS = 60_000;
/**
 * A new development key signs only once every instance has had two reloads to learn it, so no instance
 * meets a token signed with a key it does not know yet; until then the previous key keeps signing.
 */
export const KEY_PROPAGATION_SECONDS = (2 * RELOAD_INTERVAL_MS) / 1000;

/**
 * The key ring for the configured algorithm: one current key that signs and the retired keys whose tokens
 * may still be live. Keys are parsed into KeyObjects when the ring is (re)loaded, never per request.
 */
@Injectable()
export class SigningKeys implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(SigningKeys.name);
  private current!: RingKey;
  private byKid = new Map<string, RingKey>();
  private reloadTimer?: NodeJS.Timeout;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly dataSource: DataSource,
  ) {}

  async onModuleInit(): Promise<void> {
    const { algorithm, privateKey, secret } = this.config.token;
    const configured = algorithm === 'HS256' ? secret : privateKey;
    if (configured !== undefined) {
      this.useConfiguredKeys(configured);
      return;
    }
    await this.loadFromDatabase();
    // Another instance or `npm run keys:rotate` may add a key; picking it up keeps every instance verifying.
    this.reloadTimer = setInterval(() => {
      this.loadFromDatabase().catch((error: Error) =>
        this.logger.warn(`key reload failed: ${error.message}`),
      );
    }, RELOAD_INTERVAL_MS);
    this.reloadTimer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.reloadTimer);
  }

  get signingKey(): RingKey & { signing: NonNullable<RingKey['signing']> } {
    return this.current as RingKey & { signing: NonNullable<RingKey['signing']> };
  }

  /** Only the service's own keys: an unknown kid (or any injection string) simply finds nothing. */
  find(kid: string): RingKey | undefined {
    return this.byKid.get(kid);
  }

  /** Public JWKs of every verifying key; a symmetric HS256 key is never published, so the list is empty. */
  jwks(): PublishedJwk[] {
    return [...this.byKid.values()].flatMap((key) => (key.jwk ? [key.jwk] : []));
  }

  private useConfiguredKeys(material: string): void {
    const { algorithm, previousPublicKeys, previousSecrets } = this.config.token;
    const current = signingKeyFrom(algorithm, material);
    const previous = (algorithm === 'HS256' ? previousSecrets : previousPublicKeys).map((item) =>
      verifyingKeyFrom(algorithm, item),
    );
    this.install(current, previous);
  }

  private async loadFromDatabase(): Promise<void> {
    const { algorithm, accessTtlSeconds } = this.config.token;
    const rows = await loadStoredKeys(
      this.dataSource,
      algorithm,
      accessTtlSeconds + CLOCK_LEEWAY_SECONDS + KEY_PROPAGATION_SECONDS,
    );
    const keys = rows.map((row) => ({ row, key: signingKeyFrom(algorithm, row.material) }));
    const settled = Date.now() - KEY_PROPAGATION_SECONDS * 1000;
    // Rows come newest first. With no settled key, the oldest signs: on a fresh database the only one.
    const current = keys.find(({ row }) => row.createdAt.getTime() <= settled) ?? keys[keys.length - 1];
    this.install(
      current.key,
      keys.filter((entry) => entry !== current).map(({ key }) => ({ ...key, signing: undefined })),
    );
  }

  private install(current: RingKey, previous: RingKey[]): void {
    const byKid = new Map<string, RingKey>([[current.kid, current]]);
    for (const key of previous) if (!byKid.has(key.kid)) byKid.set(key.kid, key);
    this.current = current;
    this.byKid = byKid;
  }
}
