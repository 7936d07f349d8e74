import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The counters of rate-limiter-flexible's RateLimiterPostgres when no Redis is configured. The layout is the
 * one the library would create itself (key, points, expire in epoch milliseconds); creating it here keeps
 * schema changes in migrations and lets the limiter start with `tableCreated: true`.
 */
export class CreateRateLimits1763900000100 implements MigrationInterface {
  name = 'CreateRateLimits1763900000100';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE rate_limits (
        key varchar(255) PRIMARY KEY,
        points integer NOT NULL DEFAULT 0,
        expire bigint
      )`);
    // The library deletes expired rows every few minutes with `WHERE expire < $1`.
    await queryRunner.query('CREATE INDEX rate_limits_expire_idx ON rate_limits (expire)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE rate_limits');
  }
}
