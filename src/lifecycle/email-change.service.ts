import { Inject, Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { AppError } from '../common/app-error';
import type { ClientInfo } from '../common/client-info';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { MailOutbox } from '../mail/mail-outbox';
import { describeDuration } from '../mail/mail-templates';
import { MailThrottle } from '../rate-limit/mail-throttle';
import { emailProblem, normalizeEmail } from '../users/credentials';
import type { User } from '../users/user.entity';
import { UsersService } from '../users/users.service';
import { LinkTokens } from './link-tokens';
import { linkTo } from './links';

/**
 * Asking to move an account to another address (the caller has already re-proved the password): a link to
 * the new address, which completes the change (EmailVerificationService.confirm), and a notice without a
 * link to the old one. Nothing changes until the link is used; sign-ins stay.
 */
@Injectable()
export class EmailChangeService {
  constructor(
    private readonly users: UsersService,
    private readonly links: LinkTokens,
    private readonly outbox: MailOutbox,
    private readonly audit: AuditService,
    private readonly throttle: MailThrottle,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async request(user: Pick<User, 'id' | 'email'>, rawNewEmail: string, client: ClientInfo): Promise<void> {
    const newEmail = normalizeEmail(rawNewEmail);
    const problem = emailProblem(newEmail)?.replace(/^email/, 'newEmail');
    if (problem) throw AppError.validation('newEmail', problem);
    if (await this.users.findByEmail(newEmail)) throw new AppError('EMAIL_TAKEN');
    await this.throttle.consumeRequest('verification', client.ip);
    await this.throttle.consumeRecipient('verification', newEmail);
    const ttlSeconds = this.config.mail.emailVerifyTtlSeconds;
    await this.users.transaction(async (manager) => {
      const token = await this.links.issue(manager, {
        kind: 'email_change',
        userId: user.id,
        email: newEmail,
        ttlSeconds,
      });
      await this.outbox.enqueue(manager, {
        template: 'confirm-email-change',
        to: newEmail,
        variables: {
          link: linkTo(this.config, 'email_change', token),
          ttl: describeDuration(ttlSeconds),
          newEmail,
        },
      });
      await this.outbox.enqueue(manager, {
        template: 'email-change-notice',
        to: user.email,
        variables: { newEmail },
      });
      await this.audit.record('email.change_requested', user.id, client, { to: newEmail }, manager);
    });
  }
}
