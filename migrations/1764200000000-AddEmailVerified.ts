import { MigrationInterface, QueryRunner } from 'typeorm';

export class AddEmailVerified1764200000000 implements MigrationInterface {
  name = 'AddEmailVerified1764200000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // Existing accounts never proved their address; the ADMIN_EMAIL account made at start is created verified.
    await queryRunner.query('ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE users DROP COLUMN email_verified');
  }
}
