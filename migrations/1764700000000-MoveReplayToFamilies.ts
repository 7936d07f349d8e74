import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The family row names its live token and holds the answer of its last rotation. A refresh then decides
 * rotate, replay or reuse from the one row it locks, so it fits in one statement; and only the last
 * rotation can ever be replayed, since a replay is allowed only while its answer is still the live token.
 * Not for a rolling upgrade: an instance of the previous version would write the dropped column and leave
 * new families without a live token (whose first refresh would then count as reuse), so stop them first.
 */
export class MoveReplayToFamilies1764700000000 implements MigrationInterface {
  name = 'MoveReplayToFamilies1764700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE refresh_families
        ADD COLUMN live_token_id uuid,
        ADD COLUMN replay_token_id uuid,
        ADD COLUMN replay_box text`);
    await queryRunner.query(`
      UPDATE refresh_families f SET live_token_id = t.id
      FROM refresh_tokens t WHERE t.family_id = f.id AND t.used_at IS NULL`);
    // The grace window of a rotation made just before the upgrade survives it.
    await queryRunner.query(`
      UPDATE refresh_families f SET replay_token_id = t.id, replay_box = t.replay_box
      FROM refresh_tokens t
      WHERE t.family_id = f.id AND t.replaced_by = f.live_token_id AND t.replay_box IS NOT NULL`);
    await queryRunner.query('ALTER TABLE refresh_tokens DROP COLUMN replay_box');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE refresh_tokens ADD COLUMN replay_box text');
    await queryRunner.query(`
      UPDATE refresh_tokens t SET replay_box = f.replay_box
      FROM refresh_families f WHERE t.id = f.replay_token_id`);
    await queryRunner.query(`
      ALTER TABLE refresh_families
        DROP COLUMN live_token_id,
        DROP COLUMN replay_token_id,
        DROP COLUMN replay_box`);
  }
}
