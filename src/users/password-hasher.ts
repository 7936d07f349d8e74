import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import * as bcrypt from 'bcrypt';
import { createHash, randomBytes } from 'node:crypto';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { normalizePassword } from './credentials';

/**
 * bcrypt reads only the first 72 bytes of its input, so every password is first reduced to a 64-character
 * base64 SHA-384 digest of its NFKC form (the OWASP pre-hashing recipe): every character counts, and no NUL
 * byte reaches bcrypt. bcrypt's async API runs on libuv's thread pool, off the event loop.
 */
@Injectable()
export class PasswordHasher implements OnModuleInit {
  private dummyHash = '';

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  async onModuleInit(): Promise<void> {
    this.dummyHash = await this.hash(randomBytes(16).toString('hex'));
  }

  hash(password: string): Promise<string> {
    return bcrypt.hash(prehash(password), this.config.auth.bcryptCost);
  }

  verify(password: string, hash: string): Promise<boolean> {
    return bcrypt.compare(prehash(password), hash);
  }

  /** The same work as a real comparison, for logins whose email matches no account. */
  async verifyNothing(password: string): Promise<false> {
    await bcrypt.compare(prehash(password), this.dummyHash);
    return false;
  }
}

function prehash(password: string): string {
  return createHash('sha384').update(normalizePassword(password), 'utf8').digest('base64');
}
