import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module';
import { MailModule } from '../mail/mail.module';
import { MfaModule } from '../mfa/mfa.module';
import { RateLimitModule } from '../rate-limit/rate-limit.module';
import { SessionModule } from '../session/session.module';
import { TokenModule } from '../token/token.module';
import { UsersModule } from '../users/users.module';
import { EmailChangeService } from './email-change.service';
import { EmailVerificationService } from './email-verification.service';
import { LinkTokens } from './link-tokens';
import { PasswordResetService } from './password-reset.service';

/**
 * The account's lifecycle by mail: password reset, address verification, email change. Its use cases are
 * called by auth's controllers; the mail itself goes through the mail module's outbox.
 */
@Module({
  imports: [UsersModule, AuditModule, SessionModule, TokenModule, RateLimitModule, MailModule, MfaModule],
  providers: [LinkTokens, PasswordResetService, EmailVerificationService, EmailChangeService],
  exports: [PasswordResetService, EmailVerificationService, EmailChangeService],
})
export class LifecycleModule {}
