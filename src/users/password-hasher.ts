import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import * as bcrypt from 'bcrypt';
import { createHash, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { WorkQueue } from '../common/work-queue';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { normalizePassword } from './credentials';

/**
 * bcrypt reads only the first 72 bytes of its input, so every password is first reduced to a 64-character
 * base64 SHA-384 digest of its NFKC form (the OWASP pre-hashing recipe): every character counts, and no NUL
 * byte reaches bcrypt. bcrypt's async API runs on libuv's thread pool, off the event loop.
 *
 * At most one hash per core runs at once (and never all four of libuv's threads): more would not hash
 * faster, but would crowd the event loop off its core during a burst of logins and leave file, DNS and
 * crypto work queued behind bcrypt.
 *
 * The queue is bounded (the contract's "a few seconds"): past that, a new check gets 503 with Retry-After
 * rather than waiting in a line that only grows during a flood, and a check whose client disconnected
 * before its turn is dropped (its signal aborts) rather than hashed for nobody.
 */
/** How long a password check may wait for a hashing slot before it is refused with 503. */
const MAX_WAIT_MS = 3000;

@Injectable()
export class PasswordHasher implements OnModuleInit {
  private dummyHash = '';
  /** Public so tests can hold its slots; nothing else should run work on it. */
  readonly queue = new WorkQueue(Math.min(availableParallelism(), 3), MAX_WAIT_MS);

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  async onModuleInit(): Promise<void> {
    // Timed, so the queue's bound holds from the first burst on.
    this.dummyHash = await this.hash(randomBytes(16).toString('hex'));
  }

  /** `signal` aborts when the client is gone: a hash still waiting for its turn is then dropped. */
  hash(password: string, signal?: AbortSignal): Promise<string> {
    return this.queue.run(() => bcrypt.hash(prehash(password), this.config.auth.bcryptCost), signal);
  }

  verify(password: string, hash: string, signal?: AbortSignal): Promise<boolean> {
    return this.queue.run(() => bcrypt.compare(prehash(password), hash), signal);
  }

  /** The same work as a real comparison, for logins whose email matches no account. */
  async verifyNothing(password: string, signal?: AbortSignal): Promise<false> {
    await this.queue.run(() => bcrypt.compare(prehash(password), this.dummyHash), signal);
    return false;
  }
}

function prehash(password: string): string {
  return createHash('sha384').update(normalizePassword(password), 'utf8').digest('base64');
}
