import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/**
 * Specs that drive a program besides Node (a browser, redis-server) run when it is installed. Without it
 * they are skipped, saying what to install, so `npm test` passes on a machine with Node alone; CI sets
 * REQUIRE_TEST_BINARIES=1, under which a missing program fails the spec instead of skipping it.
 */
export interface TestBinary {
  /** A command looked up on PATH, or an absolute path. */
  command: string;
  install: string;
}

export const CHROMIUM: TestBinary = {
  // CHROMIUM_PATH points elsewhere (or nowhere, to check the skip).
  command: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  install: "Debian's chromium: apt-get install chromium",
};
export const REDIS_SERVER: TestBinary = {
  command: 'redis-server',
  install: 'Redis 7 (redis-server and redis-cli): apt-get install redis-server',
};
export const REDIS_CLI: TestBinary = { command: 'redis-cli', install: REDIS_SERVER.install };

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function isInstalled(binary: TestBinary): boolean {
  if (isAbsolute(binary.command)) return executable(binary.command);
  return (process.env.PATH ?? '')
    .split(delimiter)
    .some((directory) => directory !== '' && executable(join(directory, binary.command)));
}

const required = (process.env.REQUIRE_TEST_BINARIES ?? '') === '1';

/**
 * `describe` when every binary is installed. Otherwise a skipped describe whose name says what is missing
 * and how to install it (and a warning saying the same), or, under REQUIRE_TEST_BINARIES=1, a describe
 * that fails with that message.
 */
export function describeWith(binaries: TestBinary[], name: string, body: () => void): void {
  const missing = binaries.filter((binary) => !isInstalled(binary));
  if (missing.length === 0) {
    describe(name, body);
    return;
  }
  const commands = missing.map((binary) => binary.command).join(' and ');
  const installs = [...new Set(missing.map((binary) => binary.install))].join('; ');
  const why = `${commands} not found (install ${installs})`;
  if (required) {
    describe(name, () => {
      it('has the programs it needs (REQUIRE_TEST_BINARIES=1)', () => {
        throw new Error(why);
      });
    });
    return;
  }
  // Straight to stderr: Jest shows no console output of a file whose tests were all skipped.
  process.stderr.write(`\nSKIPPED "${name}": ${why}. Set REQUIRE_TEST_BINARIES=1 to make this a failure.\n`);
  describe.skip(`${name} [skipped: ${why}]`, body);
}
