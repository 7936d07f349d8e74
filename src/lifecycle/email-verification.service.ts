import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { AppError } from '../common/app-error';
import type { ClientInfo } from '../common/client-info';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { MailOutbox } from '../mail/mail-outbox';
import { describeDuration } from '../mail/mail-templates';
import { MailThrottle } from '../rate-limit/mail-throttle';
import type { User } from '../users/user.entity';
import { UsersService } from '../users/users.service';
import { LinkTokens } from './link-tokens';
import { linkTo } from './links';

/**
 * Proving an address: the mail at registration and on request, and the use of a mailed link, which either
 * verifies the account's address or completes an email change (the link then verifies the new address).
 */
@Injectable()
export class EmailVerificationService {
  constructor(
    private readonly users: UsersService,
    private readonly links: LinkTokens,
    private readonly outbox: MailOutbox,
    private readonly audit: AuditService,
    private readonly throttle: MailThrottle,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Writes the verification mail in the caller's transaction (registration's). */
  async queueVerification(user: Pick<User, 'id' | 'email'>, manager: EntityManager): Promise<void> {
    const ttlSeconds = this.config.mail.emailVerifyTtlSeconds;
    const token = await this.links.issue(manager, {
      kind: 'email_verify',
      userId: user.id,
      email: user.email,
      ttlSeconds,
    });
    await this.outbox.enqueue(manager, {
      template: 'verify-email',
      to: user.email,
      variables: { link: linkTo(this.config, 'email_verify', token), ttl: describeDuration(ttlSeconds) },
    });
  }

  /** A new verification mail (the previous link stops working); false when already verified. */
  async resend(userId: string, client: ClientInfo): Promise<boolean> {
    const user = await this.users.findById(userId);
    if (!user) throw new AppError('AUTHENTICATION_REQUIRED');
    if (user.emailVerified) return false;
    await this.throttle.consumeRequest('verification', client.ip);
    await this.throttle.consumeRecipient('verification', user.email);
    await this.users.transaction((manager) => this.queueVerification(user, manager));
    return true;
  }

  /** Uses a verification or email-change link. */
  async confirm(token: string, client: ClientInfo): Promise<void> {
    await this.users.transaction(async (manager) => {
      const link = await this.links.consume(manager, token, ['email_verify', 'email_change']);
      if (link.kind === 'email_change') {
        const before = await this.users.findById(link.userId, manager);
        // EMAIL_TAKEN when another account took the address since the request; the token stays unused.
        await this.users.changeEmail(link.userId, link.email, manager);
        await this.audit.record(
          'email.changed',
          link.userId,
          client,
          { from: before?.email, to: link.email },
          manager,
        );
        return;
      }
      // The account moved to another address since this link was mailed: it proves nothing now.
      if (!(await this.users.markEmailVerified(link.userId, link.email, manager))) {
        throw new AppError('LINK_INVALID');
      }
      await this.audit.record('email.verified', link.userId, client, { email: link.email }, manager);
    });
  }
}
