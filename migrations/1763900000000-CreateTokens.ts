import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateTokens1763900000000 implements MigrationInterface {
  name = 'CreateTokens1763900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE signing_keys (
        kid varchar(64) PRIMARY KEY,
        algorithm varchar(16) NOT NULL,
        private_material text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        retired_at timestamptz
      )`);
    await queryRunner.query(
      'CREATE INDEX signing_keys_algorithm_idx ON signing_keys (algorithm, created_at)',
    );
    await queryRunner.query(`
      CREATE TABLE refresh_families (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        idle_expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        revoke_reason varchar(32),
        user_agent varchar(512),
        ip varchar(64),
        csrf_token_hash varchar(64)
      )`);
    await queryRunner.query('CREATE INDEX refresh_families_user_idx ON refresh_families (user_id)');
    await queryRunner.query(`
      CREATE TABLE refresh_tokens (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        family_id uuid NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
        token_hash varchar(64) NOT NULL,
        parent_id uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        used_at timestamptz,
        replaced_by uuid,
        replay_box text
      )`);
    await queryRunner.query('CREATE UNIQUE INDEX refresh_tokens_hash_key ON refresh_tokens (token_hash)');
    await queryRunner.query('CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id)');
    // At most one unused token per family, whatever the code does.
    await queryRunner.query(
      'CREATE UNIQUE INDEX refresh_tokens_one_live_key ON refresh_tokens (family_id) WHERE used_at IS NULL',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE refresh_tokens');
    await queryRunner.query('DROP TABLE refresh_families');
    await queryRunner.query('DROP TABLE signing_keys');
  }
}
