import type { DataSource } from 'typeorm';
import { loadOrCreateSecret } from '../database/app-secrets';

/** The cookie-signing secret when SESSION_SECRET is unset, shared by restarts and other instances. */
export function loadOrCreateSessionSecret(dataSource: DataSource): Promise<string> {
  return loadOrCreateSecret(dataSource, 'session.cookie');
}
