import { Module } from '@nestjs/common';
import { RateLimitModule } from '../rate-limit/rate-limit.module';
import { CredentialAttempts } from './credential-attempts';
import { DeviceTokens } from './device-tokens';

/**
 * The counted check every guessable credential goes through, and the device tokens it recognises: shared
 * by the auth routes (passwords), the mfa module (codes) and the lifecycle (the reset's code).
 */
@Module({
  imports: [RateLimitModule],
  providers: [CredentialAttempts, DeviceTokens],
  exports: [CredentialAttempts, DeviceTokens],
})
export class CredentialsModule {}
