import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { createHash, randomBytes } from 'node:crypto';
import { EntityManager, IsNull, Not, Repository } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { CredentialAttempts } from '../auth/credential-attempts';
import { AppError } from '../common/app-error';
import type { ClientInfo } from '../common/client-info';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import type { User } from '../users/user.entity';
import { UsersService } from '../users/users.service';
import { LoginMethod, PendingLogin, RecoveryCode, TotpFactor } from './mfa.entities';
import { MfaKeyring } from './mfa-keyring';
import { hashRecoveryCode, looksLikeRecoveryCode, newRecoveryCodes } from './recovery-codes';
import { base32Of, matchingStep, newTotpSecret, otpauthUrl } from './totp';
import { TotpClock } from './totp-clock';

export const MFA_METHODS = ['totp', 'recovery_code'] as const;
export type MfaMethod = (typeof MFA_METHODS)[number];

/** How long a login may wait for its code, and how many codes it may try. */
const LOGIN_TOKEN_TTL_SECONDS = 5 * 60;
const LOGIN_TOKEN_MAX_ATTEMPTS = 5;

/**
 * The account a code is checked for: the id finds the factor, the email keys the login limits, and the
 * password hash (with the id) recognises the account's device tokens.
 */
export type MfaAccount = Pick<User, 'id' | 'email' | 'passwordHash' | 'mfaEnabled'>;

export interface MfaChallenge {
  mfaRequired: true;
  mfaToken: string;
  methods: MfaMethod[];
}

/** How the login that answered `mfaRequired` was asked for, so its completion answers the same way. */
export interface PendingLoginKind {
  method: LoginMethod;
  refreshInCookie: boolean;
}

export interface CompletedLogin {
  user: User;
  login: PendingLoginKind;
  /** When the first step's password check began (ms): the login is dated from it. */
  checkedAt: number;
}

/**
 * The second factor: TOTP enrolment, codes (TOTP or recovery) for logins and step-up, and the pending
 * logins between a correct password and a correct code. Every code a user could be guessing at is counted
 * against the account's login limit before it is checked, and a wrong one is a login failure.
 */
@Injectable()
export class MfaService implements OnApplicationBootstrap {
  private readonly logger = new Logger(MfaService.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectRepository(TotpFactor) private readonly factors: Repository<TotpFactor>,
    @InjectRepository(RecoveryCode) private readonly recoveryCodes: Repository<RecoveryCode>,
    @InjectRepository(PendingLogin) private readonly pendingLogins: Repository<PendingLogin>,
    private readonly keyring: MfaKeyring,
    private readonly users: UsersService,
    private readonly audit: AuditService,
    private readonly attempts: CredentialAttempts,
    private readonly clock: TotpClock,
  ) {}

  /** Re-seals secrets still under a retired key, so that key can be dropped once every instance ran this. */
  async onApplicationBootstrap(): Promise<void> {
    const stale = await this.factors.find({ where: { keyId: Not(this.keyring.currentKeyId) } });
    const unreadable = new Set<string>();
    for (const factor of stale) {
      if (!this.keyring.knows(factor.keyId)) {
        unreadable.add(factor.keyId);
        continue;
      }
      const sealed = this.keyring.seal(this.secretOf(factor), factor.userId);
      // Only if nobody replaced or re-sealed it meanwhile.
      await this.factors.update(
        { userId: factor.userId, secretCiphertext: factor.secretCiphertext },
        { secretCiphertext: sealed.ciphertext, keyId: sealed.keyId },
      );
    }
    const resealed = stale.filter((factor) => !unreadable.has(factor.keyId)).length;
    if (resealed > 0) this.logger.log(`re-sealed ${resealed} TOTP secrets under the current MFA key`);
    // Their users cannot pass the second factor until the key is configured again or an admin removes it.
    for (const keyId of unreadable) {
      this.logger.warn(`TOTP secrets sealed under MFA key ${keyId}, which is not configured`);
    }
  }

  /** Whether the user has a confirmed factor; from the cached user state, as every request reads it. */
  async hasFactor(userId: string): Promise<boolean> {
    return (await this.users.state(userId))?.mfaEnabled === true;
  }

  /** A new pending enrolment, replacing a pending one; refused while a factor is active. */
  async enrol(account: MfaAccount): Promise<{ secret: string; otpauthUrl: string }> {
    const secret = newTotpSecret();
    const sealed = this.keyring.seal(secret, account.id);
    const rows: unknown[] = await this.factors.query(
      `INSERT INTO mfa_totp (user_id, secret_ciphertext, key_id) VALUES ($1, $2, $3)
       ON CONFLICT (user_id) DO UPDATE
         SET secret_ciphertext = EXCLUDED.secret_ciphertext, key_id = EXCLUDED.key_id,
             last_used_step = NULL, created_at = now()
         WHERE mfa_totp.confirmed_at IS NULL
       RETURNING user_id`,
      [account.id, sealed.ciphertext, sealed.keyId],
    );
    if (rows.length === 0) throw alreadyActive();
    return {
      secret: base32Of(secret),
      otpauthUrl: otpauthUrl(secret, this.config.mfa.issuer, account.email),
    };
  }

  /** Activates the pending enrolment with a code from it; returns the recovery codes, shown this once. */
  async confirm(account: MfaAccount, code: string, client: ClientInfo): Promise<string[]> {
    const factor = await this.factors.findOneBy({ userId: account.id });
    if (!factor) throw AppError.validation('code', 'no enrolment is pending: start one first');
    if (factor.confirmedAt) throw alreadyActive();
    const step = matchingStep(this.secretOf(factor), code, this.clock.now());
    if (step === undefined) throw new AppError('MFA_INVALID');
    const codes = newRecoveryCodes();
    await this.users.transaction(async (manager) => {
      // The enrolment the code was checked against, still pending: not one a parallel enrol replaced.
      const result = await manager
        .getRepository(TotpFactor)
        .update(
          { userId: account.id, secretCiphertext: factor.secretCiphertext, confirmedAt: IsNull() },
          { confirmedAt: new Date(), lastUsedStep: String(step) },
        );
      if ((result.affected ?? 0) === 0) throw new AppError('MFA_INVALID');
      await this.users.setMfaEnabled(account.id, true, manager);
      await this.replaceRecoveryCodes(account.id, codes, manager);
      await this.audit.record('mfa.enabled', account.id, client, { method: 'totp' }, manager);
    });
    return codes;
  }

  /**
   * Step-up for sensitive changes: nothing to do without a factor; with one, `code` is required
   * (MFA_REQUIRED) and must be right (MFA_INVALID). Counted like a login attempt, on the device when
   * `deviceToken` is valid for the account.
   */
  async verifyStepUp(
    account: MfaAccount,
    code: string | undefined,
    client: ClientInfo,
    deviceToken?: string,
  ): Promise<void> {
    if (!(await this.hasFactor(account.id))) return;
    if (code === undefined) throw new AppError('MFA_REQUIRED');
    await this.checkCounted(account, code, client, 'step_up', deviceToken);
  }

  /** The user removes their own factor (the password was checked by the caller); any pending one too. */
  async disable(
    account: MfaAccount,
    code: string | undefined,
    client: ClientInfo,
    deviceToken?: string,
  ): Promise<void> {
    await this.verifyStepUp(account, code, client, deviceToken);
    await this.remove(account.id, client, { by: account.id });
  }

  async regenerateRecoveryCodes(account: MfaAccount, code: string, client: ClientInfo): Promise<string[]> {
    if (!(await this.hasFactor(account.id))) {
      throw AppError.validation('code', 'there is no active second factor');
    }
    await this.checkCounted(account, code, client, 'recovery_codes');
    const codes = newRecoveryCodes();
    await this.users.transaction((manager) => this.replaceRecoveryCodes(account.id, codes, manager));
    return codes;
  }

  /** An admin removes a user's factor (the user lost device and codes); the audit names the admin. */
  async removeByAdmin(adminId: string, userId: string, client: ClientInfo): Promise<void> {
    if (!(await this.users.findById(userId))) throw new AppError('NOT_FOUND');
    await this.remove(userId, client, { by: adminId });
  }

  /**
   * After a correct password (its check began at `checkedAt`, ms): the login waits for a code; nothing
   * that authenticates is issued yet.
   */
  async beginLogin(user: User, checkedAt: number, kind: PendingLoginKind): Promise<MfaChallenge> {
    const mfaToken = randomBytes(32).toString('base64url');
    // Expired ones of this user are of no use to anyone; dropping them keeps the table small.
    await this.pendingLogins
      .createQueryBuilder()
      .delete()
      .where('user_id = :userId AND expires_at < now()', { userId: user.id })
      .execute();
    await this.pendingLogins.query(
      `INSERT INTO mfa_login_tokens
         (token_hash, user_id, method, refresh_in_cookie, revoked_before, checked_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))`,
      [
        sha256(mfaToken),
        user.id,
        kind.method,
        kind.refreshInCookie,
        user.revokedBefore,
        new Date(checkedAt),
        LOGIN_TOKEN_TTL_SECONDS,
      ],
    );
    return { mfaRequired: true, mfaToken, methods: [...MFA_METHODS] };
  }

  /**
   * Completes a pending login with a code. Each try is counted on the mfaToken before the code is checked
   * (five at most, then the token is dead) and a wrong code is a login failure of the account; the token
   * works once. A `deviceToken` valid for the account counts the code on that device, as the password was.
   * `beforeCheck` sees the pending login first (the session route checks the origin there).
   */
  async completeLogin(
    mfaToken: string,
    code: string,
    client: ClientInfo,
    deviceToken: string | undefined,
    beforeCheck: (login: PendingLoginKind) => void,
  ): Promise<CompletedLogin> {
    const tokenHash = sha256(mfaToken);
    const reserved = await this.pendingLogins
      .createQueryBuilder()
      .update()
      .set({ attempts: () => 'attempts + 1' })
      .where('token_hash = :tokenHash AND used_at IS NULL AND expires_at > now()', { tokenHash })
      .andWhere('attempts < :max', { max: LOGIN_TOKEN_MAX_ATTEMPTS })
      .returning(['userId', 'method', 'refreshInCookie', 'revokedBefore', 'checkedAt'])
      .execute();
    const pending = (
      reserved.raw as {
        user_id: string;
        method: LoginMethod;
        refresh_in_cookie: boolean;
        revoked_before: Date | null;
        checked_at: Date;
      }[]
    )[0];
    if (!pending) throw new AppError('MFA_INVALID');
    const login: PendingLoginKind = { method: pending.method, refreshInCookie: pending.refresh_in_cookie };
    beforeCheck(login);
    const user = await this.users.findById(pending.user_id);
    // Deleted, or revoked (password change, logout-all, admin) since the password was checked.
    if (!user || user.revokedBefore?.getTime() !== pending.revoked_before?.getTime()) {
      throw new AppError('MFA_INVALID');
    }
    await this.checkCounted(user, code, client, 'login', deviceToken);
    const used = await this.pendingLogins.update({ tokenHash, usedAt: IsNull() }, { usedAt: new Date() });
    if ((used.affected ?? 0) === 0) throw new AppError('MFA_INVALID');
    return { user, login, checkedAt: new Date(pending.checked_at).getTime() };
  }

  /**
   * Checks a code through the one counted path of passwords: admitted (or refused during the account's or
   * device's lock) before it is checked, so parallel wrong codes cannot pass the limit; a wrong code is a
   * login failure, a right one clears the account's failures.
   */
  private async checkCounted(
    account: MfaAccount,
    code: string,
    client: ClientInfo,
    during: 'login' | 'step_up' | 'recovery_codes',
    deviceToken?: string,
  ): Promise<void> {
    const passed = await this.attempts.check(
      { email: account.email, user: account, deviceToken },
      client,
      async () => (await this.accept(account.id, code, client)) !== undefined,
      'code',
    );
    if (passed) return;
    await this.audit.record('mfa.failed', account.id, client, { during });
    throw new AppError('MFA_INVALID');
  }

  /** Accepts a TOTP code or a recovery code at most once; undefined when it is wrong, used or replayed. */
  private async accept(userId: string, code: string, client: ClientInfo): Promise<MfaMethod | undefined> {
    if (/^\d{6}$/.test(code)) return (await this.acceptTotp(userId, code)) ? 'totp' : undefined;
    if (looksLikeRecoveryCode(code)) {
      return (await this.acceptRecoveryCode(userId, code, client)) ? 'recovery_code' : undefined;
    }
    return undefined;
  }

  private async acceptTotp(userId: string, code: string): Promise<boolean> {
    const factor = await this.factors.findOneBy({ userId });
    if (!factor?.confirmedAt) return false;
    const step = matchingStep(this.secretOf(factor), code, this.clock.now());
    if (step === undefined) return false;
    // One UPDATE moves the last used step forward: of two requests with one code (on any instance), one
    // wins; a code of the same or an earlier step is refused from then on.
    const result = await this.factors
      .createQueryBuilder()
      .update()
      .set({ lastUsedStep: String(step) })
      .where('user_id = :userId AND confirmed_at IS NOT NULL', { userId })
      .andWhere('(last_used_step IS NULL OR last_used_step < :step)', { step })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  private async acceptRecoveryCode(userId: string, code: string, client: ClientInfo): Promise<boolean> {
    return this.users.transaction(async (manager) => {
      const result = await manager
        .createQueryBuilder()
        .update(RecoveryCode)
        .set({ usedAt: () => 'now()' })
        .where('user_id = :userId AND code_hash = :codeHash AND used_at IS NULL', {
          userId,
          codeHash: hashRecoveryCode(userId, code),
        })
        .execute();
      if ((result.affected ?? 0) === 0) return false;
      const remaining = await manager.getRepository(RecoveryCode).countBy({ userId, usedAt: IsNull() });
      await this.audit.record('mfa.recovery_code_used', userId, client, { remaining }, manager);
      return true;
    });
  }

  private secretOf(factor: TotpFactor): Buffer {
    return this.keyring.open({ keyId: factor.keyId, ciphertext: factor.secretCiphertext }, factor.userId);
  }

  private async replaceRecoveryCodes(userId: string, codes: string[], manager: EntityManager): Promise<void> {
    const repository = manager.getRepository(RecoveryCode);
    await repository.delete({ userId });
    await repository.insert(codes.map((code) => ({ userId, codeHash: hashRecoveryCode(userId, code) })));
  }

  private async remove(userId: string, client: ClientInfo, detail: { by: string }): Promise<void> {
    await this.users.transaction(async (manager) => {
      const removed = await manager
        .createQueryBuilder()
        .delete()
        .from(TotpFactor)
        .where('user_id = :userId', { userId })
        .returning(['confirmedAt'])
        .execute();
      // Dropping a pending enrolment disables nothing; only an active factor's removal is audited.
      const wasActive = (removed.raw as { confirmed_at: Date | null }[]).some((row) => row.confirmed_at);
      await manager.getRepository(RecoveryCode).delete({ userId });
      await manager.getRepository(PendingLogin).delete({ userId });
      await this.users.setMfaEnabled(userId, false, manager);
      if (wasActive) await this.audit.record('mfa.disabled', userId, client, detail, manager);
    });
  }
}

function alreadyActive(): AppError {
  return new AppError(
    'VALIDATION_FAILED',
    'A second factor is already active: remove it before enrolling again',
  );
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}
