import { Injectable } from '@nestjs/common';
import type { ClientInfo } from '../common/client-info';
import { LoginThrottle } from '../rate-limit/login-throttle';
import type { User } from '../users/user.entity';
import { Registration, UsersService } from '../users/users.service';

/** The register use case: every attempt counts against the client IP's limit before an account is made. */
@Injectable()
export class RegistrationService {
  constructor(
    private readonly users: UsersService,
    private readonly throttle: LoginThrottle,
  ) {}

  async register(input: Registration, client: ClientInfo): Promise<User> {
    await this.throttle.consumeRegistration(client.ip);
    return this.users.register(input, client);
  }
}
