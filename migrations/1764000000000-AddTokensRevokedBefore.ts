import { MigrationInterface, QueryRunner } from 'typeorm';

export class AddTokensRevokedBefore1764000000000 implements MigrationInterface {
  name = 'AddTokensRevokedBefore1764000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // A role change revokes access tokens (they carry the role) but not cookie sessions (they read it).
    await queryRunner.query('ALTER TABLE users ADD COLUMN tokens_revoked_before timestamptz');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE users DROP COLUMN tokens_revoked_before');
  }
}
