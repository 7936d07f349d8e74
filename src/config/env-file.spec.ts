import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processEnvironment } from './env-file';

describe('processEnvironment', () => {
  const directory = mkdtempSync(join(tmpdir(), 'env-file-'));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('reads .env into the environment, leaving variables that are already set alone', () => {
    const path = join(directory, '.env');
    writeFileSync(path, 'ENV_FILE_TEST_FROM_FILE=from-file  # a comment\nENV_FILE_TEST_PRESET=from-file\n');
    const env: NodeJS.ProcessEnv = { ENV_FILE_TEST_PRESET: 'from-environment' };
    expect(processEnvironment(path, env)).toEqual({
      ENV_FILE_TEST_FROM_FILE: 'from-file',
      ENV_FILE_TEST_PRESET: 'from-environment',
    });
  });

  it('needs no .env file', () => {
    expect(processEnvironment(join(directory, 'missing.env'), {})).toEqual({});
  });

  it('reads .env.example as it is written, inline comments included', () => {
    const env = processEnvironment(join(__dirname, '../../.env.example'), {});
    expect(env).toMatchObject({ NODE_ENV: 'development', PORT: '3000', COOKIE_SAMESITE: 'lax' });
  });
});
