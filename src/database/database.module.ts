import { Module } from '@nestjs/common';
import { TypeOrmModule, TypeOrmModuleOptions } from '@nestjs/typeorm';
import { DataSource, DataSourceOptions } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { dataSourceOptions, runMigrations } from './data-source';
import { EmbeddedPostgres, startEmbeddedPostgres } from './embedded-postgres';

type OptionsWithEmbedded = DataSourceOptions & {
  embedded?: EmbeddedPostgres;
  migrateWith: DataSourceOptions;
};

/**
 * The single DataSource: PostgreSQL from DATABASE_URL, or the embedded PGlite under DATA_DIR when it is
 * unset. The schema comes from migrations only, run at start on a connection of their own without the
 * per-query time limits that requests get.
 */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: async (config: AppConfig): Promise<TypeOrmModuleOptions> => {
        const embedded = config.database.url
          ? undefined
          : await startEmbeddedPostgres(config.database.dataDir);
        const url = config.database.url ?? embedded!.url;
        const remote = !embedded;
        return {
          ...dataSourceOptions(url, { remote, purpose: 'serve', poolSize: config.database.poolSize }),
          autoLoadEntities: true,
          embedded,
          migrateWith: dataSourceOptions(url, { remote, purpose: 'migrate' }),
        } as unknown as TypeOrmModuleOptions;
      },
      dataSourceFactory: async (options) => {
        const { embedded, migrateWith, ...rest } = options as OptionsWithEmbedded;
        const dataSource = new DataSource(rest);
        const migrator = new DataSource(migrateWith);
        try {
          await migrator.initialize();
          await runMigrations(migrator);
          await migrator.destroy();
          await dataSource.initialize();
        } catch (error) {
          if (migrator.isInitialized) await migrator.destroy();
          if (dataSource.isInitialized) await dataSource.destroy();
          await embedded?.stop();
          throw error;
        }
        if (embedded) {
          const destroy = dataSource.destroy.bind(dataSource);
          dataSource.destroy = async () => {
            await destroy();
            await embedded.stop();
          };
        }
        return dataSource;
      },
    }),
  ],
})
export class DatabaseModule {}
