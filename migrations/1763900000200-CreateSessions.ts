import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateSessions1763900000200 implements MigrationInterface {
  name = 'CreateSessions1763900000200';

  async up(queryRunner: QueryRunner): Promise<void> {
    // Cookie sessions when no Redis is configured; deleting a user deletes its sessions with it.
    await queryRunner.query(`
      CREATE TABLE sessions (
        sid varchar(64) PRIMARY KEY,
        user_id uuid REFERENCES users (id) ON DELETE CASCADE,
        public_id uuid NOT NULL DEFAULT gen_random_uuid(),
        data jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      )`);
    await queryRunner.query('CREATE INDEX sessions_user_id_idx ON sessions (user_id)');
    await queryRunner.query('CREATE INDEX sessions_expires_at_idx ON sessions (expires_at)');
    await queryRunner.query(`
      CREATE TABLE app_secrets (
        name varchar(64) PRIMARY KEY,
        value text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE app_secrets');
    await queryRunner.query('DROP TABLE sessions');
  }
}
