import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

/**
 * The environment, after reading `.env` (from the working directory) into it when the file exists: a
 * convenience for development, never required. Variables already set win over the file's. The parser is
 * Node's own (the one behind `process.loadEnvFile`), applied to the object given rather than the global.
 */
export function processEnvironment(path = '.env', env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (!existsSync(path)) return env;
  for (const [name, value] of Object.entries(parseEnv(readFileSync(path, 'utf8')))) {
    if (env[name] === undefined) env[name] = value;
  }
  return env;
}
