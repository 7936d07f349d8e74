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
 */
@Injectable()
export class PasswordHasher implements OnModuleInit {
  private dummyHash = '';
  private readonly queue = new WorkQueue(Math.min(availableParallelism(), 3));

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  async onModuleInit(): Promise<void> {
    this.dummyHash = await this.hash(randomBytes(16).toString('hex'));
  }

  hash(password: string): Promise<string> {
    return this.queue.run(() => bcrypt.hash(prehash(password), this.config.auth.bcryptCost));
  }

  verify(password: string, hash: string): Promise<boolean> {
    return this.queue.run(() => bcrypt.compare(prehash(password), hash));
  }

  /** The same work as a real comparison, for logins whose email matches no account. */
  async verifyNothing(password: string): Promise<false> {
    await this.queue.run(() => bcrypt.compare(prehash(password), this.dummyHash));
    return false;
  }
}

function prehash(password: string): string {
  return createHash('sha384').update(normalizePassword(password), 'utf8').digest('base64');
}
