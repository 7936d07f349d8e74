import type { DataSource, EntityManager } from 'typeorm';
import type { JwtAlgorithm } from '../config/app-config';
import { generateKeyMaterial, signingKeyFrom } from './key-material';

export interface StoredKey {
  kid: string;
  material: string;
  createdAt: Date;
  retiredAt: Date | null;
}

// An arbitrary constant: instances starting together (or a rotation) take turns creating keys.
const KEY_LOCK = 7_734_103;

/**
 * The development key ring kept in the signing_keys table, so restarts and every instance share it. Used by
 * the service at start and by `npm run keys:rotate`.
 */
export async function loadStoredKeys(
  dataSource: DataSource,
  algorithm: JwtAlgorithm,
  keepRetiredSeconds: number,
): Promise<StoredKey[]> {
  return dataSource.transaction(async (manager) => {
    await manager.query('SELECT pg_advisory_xact_lock($1)', [KEY_LOCK]);
    let rows = await selectKeys(manager, algorithm, keepRetiredSeconds);
    if (!rows.some((row) => row.retiredAt === null)) {
      await insertKey(manager, algorithm);
      rows = await selectKeys(manager, algorithm, keepRetiredSeconds);
    }
    return rows;
  });
}

/** Retires the current key and makes a new one current; tokens of the old one verify until they expire. */
export async function rotateStoredKeys(dataSource: DataSource, algorithm: JwtAlgorithm): Promise<string> {
  return dataSource.transaction(async (manager) => {
    await manager.query('SELECT pg_advisory_xact_lock($1)', [KEY_LOCK]);
    await manager.query(
      'UPDATE signing_keys SET retired_at = now() WHERE algorithm = $1 AND retired_at IS NULL',
      [algorithm],
    );
    return insertKey(manager, algorithm);
  });
}

async function selectKeys(
  manager: EntityManager,
  algorithm: JwtAlgorithm,
  keepRetiredSeconds: number,
): Promise<StoredKey[]> {
  const rows: { kid: string; private_material: string; created_at: Date; retired_at: Date | null }[] =
    await manager.query(
      `SELECT kid, private_material, created_at, retired_at FROM signing_keys
      WHERE algorithm = $1 AND (retired_at IS NULL OR retired_at > now() - make_interval(secs => $2))
      ORDER BY created_at DESC`,
      [algorithm, keepRetiredSeconds],
    );
  return rows.map((row) => ({
    kid: row.kid,
    material: row.private_material,
    createdAt: row.created_at,
    retiredAt: row.retired_at,
  }));
}

async function insertKey(manager: EntityManager, algorithm: JwtAlgorithm): Promise<string> {
  const material = generateKeyMaterial(algorithm);
  const { kid } = signingKeyFrom(algorithm, material);
  await manager.query('INSERT INTO signing_keys (kid, algorithm, private_material) VALUES ($1, $2, $3)', [
    kid,
    algorithm,
    material,
  ]);
  return kid;
}
