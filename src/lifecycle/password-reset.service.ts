import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { AppError } from '../common/app-error';
import type { ClientInfo } from '../common/client-info';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { MailOutbox, MailRequest, QueuedMail } from '../mail/mail-outbox';
import { describeDuration, MailVariables } from '../mail/mail-templates';
import { LoginThrottle } from '../rate-limit/login-throttle';
import { MailThrottle } from '../rate-limit/mail-throttle';
import { MfaService } from '../mfa/mfa.service';
import { SessionService } from '../session/session.service';
import { RefreshFamilies } from '../token/refresh-families';
import { emailProblem, normalizeEmail } from '../users/credentials';
import { UsersService } from '../users/users.service';
import { LinkTokens } from './link-tokens';
import { linkTo } from './links';

export interface PasswordReset {
  token: string;
  newPassword: string;
  /** The second factor's code, required when the user has one. */
  code?: string;
}

/**
 * Forgotten passwords. `request` answers alike for every well-formed address: it counts the client's
 * request and records it, the same row written by the same statement whatever the address, so neither its
 * answer nor its timing depends on whether an account has the address, and an answered request survives a
 * crash. The mail worker then resolves the row (`resolveRequest`): the lookup, the address's limit, the
 * token and the mail, or nothing for an unknown address. `reset` uses the mailed token and signs the user
 * out everywhere.
 */
@Injectable()
export class PasswordResetService implements OnModuleInit {
  constructor(
    private readonly users: UsersService,
    private readonly links: LinkTokens,
    private readonly outbox: MailOutbox,
    private readonly audit: AuditService,
    private readonly sessions: SessionService,
    private readonly families: RefreshFamilies,
    private readonly loginThrottle: LoginThrottle,
    private readonly mailThrottle: MailThrottle,
    private readonly mfa: MfaService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.outbox.resolveRequests('password-reset-request', (request) => this.resolveRequest(request));
  }

  async request(rawEmail: string, client: ClientInfo): Promise<void> {
    const email = normalizeEmail(rawEmail);
    const problem = emailProblem(email);
    if (problem) throw AppError.validation('email', problem);
    await this.mailThrottle.consumeRequest('password_reset', client.ip);
    // Who asked, for the audit entry the worker writes; erased with the row once resolved.
    const asker: MailVariables = {};
    if (client.ip !== undefined) asker.ip = client.ip;
    if (client.userAgent !== undefined) asker.userAgent = client.userAgent;
    await this.users.transaction((manager) =>
      this.outbox.enqueueRequest(manager, { kind: 'password-reset-request', to: email, variables: asker }),
    );
  }

  /**
   * In the mail worker: past the address's limit, or for an address no account has, the request is dropped
   * (the 202 was given long ago, so neither reveals anything); otherwise a new token voids the older ones
   * and the reset mail takes the request's place.
   */
  private async resolveRequest(
    request: MailRequest,
  ): Promise<((manager: EntityManager) => Promise<QueuedMail>) | undefined> {
    try {
      await this.mailThrottle.consumeRecipient('password_reset', request.to);
    } catch (error) {
      if (error instanceof AppError && error.code === 'RATE_LIMITED') return undefined;
      throw error;
    }
    const user = await this.users.findByEmail(request.to);
    if (!user) return undefined;
    const client: ClientInfo = { ip: request.variables.ip, userAgent: request.variables.userAgent };
    const ttlSeconds = this.config.mail.passwordResetTtlSeconds;
    return async (manager) => {
      const token = await this.links.issue(manager, {
        kind: 'password_reset',
        userId: user.id,
        email: user.email,
        ttlSeconds,
      });
      await this.audit.record('password.reset_requested', user.id, client, {}, manager);
      return {
        template: 'password-reset',
        to: user.email,
        variables: { link: linkTo(this.config, 'password_reset', token), ttl: describeDuration(ttlSeconds) },
      };
    };
  }

  /**
   * The new password must pass the policy before the token is used up. Every session, refresh family and
   * access token of the user is revoked (the password stamp), the account's login lock is lifted, and the
   * address counts as verified: the link reached it. A user with a second factor must add a code (a mailbox
   * alone does not take over the account): checked, and counted like a login attempt (on the device with a
   * valid `deviceToken`), before the link is used up, so a missing or wrong code leaves the link working.
   */
  async reset(input: PasswordReset, client: ClientInfo, deviceToken?: string): Promise<void> {
    // A bad link is refused before the password is hashed.
    const userId = await this.links.liveUserId(input.token, ['password_reset']);
    const user = userId === undefined ? null : await this.users.findById(userId);
    if (!user) throw new AppError('LINK_INVALID');
    await this.mfa.verifyStepUp(user, input.code, client, deviceToken);
    const passwordHash = await this.users.hashNewPassword(input.newPassword);
    const link = await this.users.transaction(async (manager) => {
      const consumed = await this.links.consume(manager, input.token, ['password_reset']);
      // The account moved to another address since the link was mailed: the old address has no say.
      if (!(await this.users.markEmailVerified(consumed.userId, consumed.email, manager))) {
        throw new AppError('LINK_INVALID');
      }
      await this.users.setPasswordHash(consumed.userId, passwordHash, manager);
      await this.families.revokeAllFamilies(consumed.userId, 'password_reset', undefined, manager);
      await this.audit.record('password.reset', consumed.userId, client, {}, manager);
      return consumed;
    });
    await this.sessions.revokeAll(link.userId);
    await this.loginThrottle.clearAccountLock(link.email);
  }
}
