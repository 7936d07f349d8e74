import { MigrationInterface, QueryRunner } from 'typeorm';

export class AddFamilyAuthAt1764500000000 implements MigrationInterface {
  name = 'AddFamilyAuthAt1764500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // When the password check that started the family began: a family dated before the user's revocation
    // stamp (a login in flight across a password change) never refreshes. Existing families date from login.
    await queryRunner.query('ALTER TABLE refresh_families ADD COLUMN auth_at timestamptz');
    await queryRunner.query('UPDATE refresh_families SET auth_at = created_at');
    await queryRunner.query('ALTER TABLE refresh_families ALTER COLUMN auth_at SET NOT NULL');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE refresh_families DROP COLUMN auth_at');
  }
}
