import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateLinkTokensAndMailOutbox1764200000100 implements MigrationInterface {
  name = 'CreateLinkTokensAndMailOutbox1764200000100';

  async up(queryRunner: QueryRunner): Promise<void> {
    // seq orders tokens of one user and kind: only the newest may be consumed, whatever the commit order.
    await queryRunner.query(`
      CREATE TABLE link_tokens (
        seq bigserial PRIMARY KEY,
        token_hash char(64) NOT NULL UNIQUE,
        kind varchar(32) NOT NULL CHECK (kind IN ('password_reset', 'email_verify', 'email_change')),
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        email varchar(254) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz
      )`);
    await queryRunner.query('CREATE INDEX link_tokens_user_kind_idx ON link_tokens (user_id, kind, seq)');
    // A claimed row's next_attempt_at is the end of its claim: a worker that dies leaves it due again then.
    await queryRunner.query(`
      CREATE TABLE mail_outbox (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        template varchar(64) NOT NULL,
        recipient varchar(254) NOT NULL,
        variables jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        attempts integer NOT NULL DEFAULT 0,
        claim uuid,
        sent_at timestamptz,
        abandoned_at timestamptz,
        last_error varchar(500)
      )`);
    await queryRunner.query(`
      CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at)
        WHERE sent_at IS NULL AND abandoned_at IS NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE mail_outbox');
    await queryRunner.query('DROP TABLE link_tokens');
  }
}
