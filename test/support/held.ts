import type { INestApplication } from '@nestjs/common';
import { PasswordHasher } from '../../src/users/password-hasher';

/** A promise the test settles by hand, to hold work in flight across a state change. */
export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

/** Resolves once `condition` holds, checking after each turn of I/O; fails after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/**
 * Wraps the running app's PasswordHasher.verify: every comparison `holds` picks waits for `release` before
 * it runs (and counts in `entered`). `restore` puts the original back.
 */
export function holdPasswordChecks(
  app: INestApplication,
  holds: (password: string, hash: string) => boolean,
): { entered: () => number; release(): void; restore(): void } {
  const hasher = app.get(PasswordHasher);
  const original = hasher.verify.bind(hasher);
  const gate = deferred();
  let entered = 0;
  hasher.verify = async (password: string, hash: string, signal?: AbortSignal): Promise<boolean> => {
    if (holds(password, hash)) {
      entered += 1;
      await gate.promise;
    }
    return original(password, hash, signal);
  };
  return {
    entered: () => entered,
    release: () => gate.resolve(),
    restore: () => {
      hasher.verify = original;
    },
  };
}
