import { Inject, Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { AppError } from '../common/app-error';
import type { ClientInfo } from '../common/client-info';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { normalizeEmail } from '../users/credentials';
import { User } from '../users/user.entity';
import { UsersService } from '../users/users.service';
import { CredentialAttempts } from './credential-attempts';

/**
 * A login that passed its password check. `checkedAt` (ms) is when the check began, before the user row was
 * read: whatever the login issues is dated from it, so a password change, logout-all, admin revoke, role
 * change or deletion that lands while the check runs also revokes what the login hands out after it.
 */
export interface VerifiedLogin {
  user: User;
  checkedAt: number;
}

/**
 * Checks a login's email and password for both login routes. An unknown email does the same bcrypt work
 * as a wrong password, counts towards the same limits and gets the same error, so responses do not reveal
 * which accounts exist. The attempt is counted before the password is compared: during a lock even the
 * right password gets 429, so a lock cannot be used as an oracle. With REQUIRE_VERIFIED_EMAIL, the right
 * password to an unverified account gets EMAIL_NOT_VERIFIED and nothing is issued.
 */
@Injectable()
export class LoginService {
  constructor(
    private readonly users: UsersService,
    private readonly audit: AuditService,
    private readonly attempts: CredentialAttempts,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async verifyCredentials(
    rawEmail: string,
    password: string,
    deviceToken: string | undefined,
    client: ClientInfo,
  ): Promise<VerifiedLogin> {
    const email = normalizeEmail(rawEmail);
    const checkedAt = Date.now();
    const user = await this.users.findByEmail(email);
    const valid = await this.attempts.check({ email, user, deviceToken }, client, (signal) =>
      this.users.checkPassword(user, password, signal),
    );
    if (!user || !valid) {
      await this.audit.record('login.failed', user?.id ?? null, client, { reason: 'invalid_credentials' });
      throw new AppError('INVALID_CREDENTIALS');
    }
    // Only after the password: a wrong one says INVALID_CREDENTIALS whatever the address's state.
    if (this.config.mail.requireVerifiedEmail && !user.emailVerified) {
      await this.audit.record('login.failed', user.id, client, { reason: 'email_not_verified' });
      throw new AppError('EMAIL_NOT_VERIFIED');
    }
    return { user, checkedAt };
  }
}
