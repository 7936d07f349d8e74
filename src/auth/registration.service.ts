import { Injectable } from '@nestjs/common';
import type { ClientInfo } from '../common/client-info';
import { EmailVerificationService } from '../lifecycle/email-verification.service';
import { LoginThrottle } from '../rate-limit/login-throttle';
import type { User } from '../users/user.entity';
import { Registration, UsersService } from '../users/users.service';

/**
 * The register use case: every attempt counts against the client IP's limit before an account is made, and
 * the verification mail is written in the transaction that makes it.
 */
@Injectable()
export class RegistrationService {
  constructor(
    private readonly users: UsersService,
    private readonly throttle: LoginThrottle,
    private readonly verification: EmailVerificationService,
  ) {}

  async register(input: Registration, client: ClientInfo): Promise<User> {
    await this.throttle.consumeRegistration(client.ip);
    return this.users.register(input, client, (user, manager) =>
      this.verification.queueVerification(user, manager),
    );
  }
}
