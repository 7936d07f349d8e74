import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { AppError } from '../common/app-error';
import type { ClientInfo } from '../common/client-info';
import { MfaService } from '../mfa/mfa.service';
import { LoginThrottle } from '../rate-limit/login-throttle';
import { normalizeEmail } from '../users/credentials';
import { User } from '../users/user.entity';
import { UsersService } from '../users/users.service';

/**
 * Checks a login's email and password for both login routes. An unknown email does the same bcrypt work
 * as a wrong password, counts towards the same limits and gets the same error, so responses do not reveal
 * which accounts exist. The limits are read before the password is compared: during a lock even the right
 * password gets 429, so a lock cannot be used as an oracle.
 */
@Injectable()
export class LoginService {
  constructor(
    private readonly users: UsersService,
    private readonly audit: AuditService,
    private readonly throttle: LoginThrottle,
    private readonly mfa: MfaService,
  ) {}

  async verifyCredentials(rawEmail: string, password: string, client: ClientInfo): Promise<User> {
    const email = normalizeEmail(rawEmail);
    await this.throttle.assertLoginAllowed(email, client.ip);
    const user = await this.users.findByEmail(email);
    const valid = await this.users.checkPassword(user, password);
    if (!user || !valid) {
      await this.throttle.recordLoginFailure(email, client.ip);
      await this.audit.record('login.failed', user?.id ?? null, client, { reason: 'invalid_credentials' });
      throw new AppError('INVALID_CREDENTIALS');
    }
    // With a second factor to come, the account's failures are cleared only when the code is right.
    if (!(await this.mfa.hasFactor(user.id))) await this.throttle.recordLoginSuccess(email);
    return user;
  }
}
