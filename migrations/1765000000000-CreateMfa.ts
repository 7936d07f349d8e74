import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateMfa1765000000000 implements MigrationInterface {
  name = 'CreateMfa1765000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // Read with the user's state on every request (the public user shows it), so it lives on the row.
    await queryRunner.query('ALTER TABLE users ADD COLUMN mfa_enabled boolean NOT NULL DEFAULT false');
    // Whether the login that started the family passed a second factor: its access tokens say so in `amr`.
    await queryRunner.query('ALTER TABLE refresh_families ADD COLUMN mfa boolean NOT NULL DEFAULT false');
    // One TOTP factor per user, pending until confirmed. last_used_step makes each code single use: a code
    // is accepted only by the one UPDATE that moves it forward.
    await queryRunner.query(`
      CREATE TABLE mfa_totp (
        user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        secret_ciphertext text NOT NULL,
        key_id varchar(32) NOT NULL,
        confirmed_at timestamptz,
        last_used_step bigint,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query('CREATE INDEX mfa_totp_key_id_idx ON mfa_totp (key_id)');
    await queryRunner.query(`
      CREATE TABLE mfa_recovery_codes (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        code_hash varchar(64) NOT NULL,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (user_id, code_hash)
      )`);
    // A login that passed its password and waits for a code: the mfaToken, stored only as a hash.
    await queryRunner.query(`
      CREATE TABLE mfa_login_tokens (
        token_hash varchar(64) PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        method varchar(16) NOT NULL,
        refresh_in_cookie boolean NOT NULL DEFAULT false,
        revoked_before timestamptz,
        checked_at timestamptz NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        used_at timestamptz,
        expires_at timestamptz NOT NULL
      )`);
    await queryRunner.query('CREATE INDEX mfa_login_tokens_user_id_idx ON mfa_login_tokens (user_id)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE mfa_login_tokens');
    await queryRunner.query('DROP TABLE mfa_recovery_codes');
    await queryRunner.query('DROP TABLE mfa_totp');
    await queryRunner.query('ALTER TABLE refresh_families DROP COLUMN mfa');
    await queryRunner.query('ALTER TABLE users DROP COLUMN mfa_enabled');
  }
}
