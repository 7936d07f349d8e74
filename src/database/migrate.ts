import { DataSource } from 'typeorm';
import { loadConfig } from '../config/load-config';
import { dataSourceOptions, runMigrations } from './data-source';
import { startEmbeddedPostgres } from './embedded-postgres';

/** `npm run migration:run`: applies pending migrations to the configured database and exits. */
async function main(): Promise<void> {
  const config = loadConfig();
  const embedded = config.database.url ? undefined : await startEmbeddedPostgres(config.database.dataDir);
  const dataSource = new DataSource(
    dataSourceOptions(config.database.url ?? embedded!.url, { remote: !embedded, purpose: 'migrate' }),
  );
  await dataSource.initialize();
  try {
    await runMigrations(dataSource);
    const applied: { name: string }[] = await dataSource.query('SELECT name FROM migrations ORDER BY id');
    console.log(`migrations applied: ${applied.map((row) => row.name).join(', ')}`);
  } finally {
    await dataSource.destroy();
    await embedded?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
