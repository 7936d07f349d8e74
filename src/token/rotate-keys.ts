import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config';
import { loadConfig } from '../config/load-config';
import { dataSourceOptions, runMigrations } from '../database/data-source';
import { startEmbeddedPostgres } from '../database/embedded-postgres';
import { rotateStoredKeys } from './signing-keys.store';

/**
 * Makes a new development signing key current and retires the old one, which keeps verifying until the
 * tokens it signed have expired. With configured keys (production) rotation is a configuration change
 * instead: see docs/tokens.md. Returns the new key's kid.
 */
export async function rotateKeys(config: AppConfig): Promise<string> {
  const configured = config.token.algorithm === 'HS256' ? config.token.secret : config.token.privateKey;
  if (configured !== undefined) {
    throw new Error(
      'signing keys come from JWT_PRIVATE_KEY / JWT_SECRET: rotate by moving the old key to JWT_PREVIOUS_PUBLIC_KEYS / JWT_PREVIOUS_SECRETS and configuring a new one',
    );
  }
  const embedded = config.database.url ? undefined : await startEmbeddedPostgres(config.database.dataDir);
  const dataSource = new DataSource(dataSourceOptions(config.database.url ?? embedded!.url));
  try {
    await dataSource.initialize();
    await runMigrations(dataSource);
    return await rotateStoredKeys(dataSource, config.token.algorithm);
  } finally {
    if (dataSource.isInitialized) await dataSource.destroy();
    await embedded?.stop();
  }
}

// `npm run keys:rotate` runs this file directly; tests import rotateKeys.
if (require.main === module) {
  const config = loadConfig();
  rotateKeys(config)
    .then((kid) =>
      console.log(
        `new ${config.token.algorithm} signing key ${kid} added; instances sign with it two minutes from now`,
      ),
    )
    .catch((error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    });
}
