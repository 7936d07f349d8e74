import { Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error';
import type { ClientInfo } from '../common/client-info';
import { LoginThrottle } from '../rate-limit/login-throttle';
import { Presentation, RefreshFamilies, TokenGrant } from '../token/refresh-families';

/**
 * The refresh use case: every attempt, a missing or unknown token included, counts against the client
 * IP's refresh limit before the rotation's transaction starts, so a limit check never runs inside it.
 */
@Injectable()
export class TokenRefreshService {
  constructor(
    private readonly families: RefreshFamilies,
    private readonly throttle: LoginThrottle,
  ) {}

  async refresh(presentation: Presentation | undefined, client: ClientInfo): Promise<TokenGrant> {
    await this.throttle.consumeRefresh(client.ip);
    if (!presentation) throw new AppError('REFRESH_TOKEN_INVALID');
    return this.families.refresh(presentation, client);
  }
}
