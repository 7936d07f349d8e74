import { Injectable } from '@nestjs/common';
import type { ClientInfo } from '../common/client-info';
import { LoginThrottle } from '../rate-limit/login-throttle';
import type { User } from '../users/user.entity';
import { DeviceTokens } from './device-tokens';

/** Whose credential a check proves, and the device token the client presented, if any. */
export interface CheckTarget {
  /** Normalised; counts for unknown accounts too, so a lock reveals nothing. */
  email: string;
  user: Pick<User, 'id' | 'passwordHash' | 'mfaEnabled'> | null;
  deviceToken?: string;
}

/** What is checked: a password, or a second-factor code (TOTP or recovery code). */
export type CredentialKind = 'password' | 'code';

/**
 * The one path of every guessable check: passwords (both logins, password change, account deletion, and
 * the email change and MFA enrolment to come) and second-factor codes. The attempt is counted before the
 * check runs, on the account, or on the device when the client presents a device token valid for that
 * account; a check that never ran (queue full, client gone, an error) gives its count back.
 */
@Injectable()
export class CredentialAttempts {
  constructor(
    private readonly throttle: LoginThrottle,
    private readonly devices: DeviceTokens,
  ) {}

  /**
   * Runs `check` (handed the client's signal) once the attempt is counted; returns its verdict. A right
   * password of an account with a second factor clears nothing: only a right code does, or else a known
   * password would reset the account's failures between rounds of guessed codes.
   */
  async check(
    target: CheckTarget,
    client: ClientInfo,
    check: (signal: AbortSignal | undefined) => Promise<boolean>,
    kind: CredentialKind = 'password',
  ): Promise<boolean> {
    const device = this.devices.recognise(target.deviceToken, target.user);
    const admission = await this.throttle.admit({ email: target.email, device }, client.ip);
    let passed: boolean;
    try {
      passed = await check(client.signal);
    } catch (error) {
      await admission.settle('unchecked');
      throw error;
    }
    const halfway = kind === 'password' && target.user?.mfaEnabled === true;
    await admission.settle(passed ? (halfway ? 'unchecked' : 'passed') : 'failed');
    return passed;
  }
}
