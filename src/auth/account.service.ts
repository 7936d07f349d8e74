import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { AuditService } from '../audit/audit.service';
import { AppError } from '../common/app-error';
import type { ClientInfo } from '../common/client-info';
import type { Principal } from '../common/principal';
import { EmailChangeService } from '../lifecycle/email-change.service';
import { MfaService } from '../mfa/mfa.service';
import { SessionService } from '../session/session.service';
import { RefreshFamilies } from '../token/refresh-families';
import { Role, User } from '../users/user.entity';
import { UsersService } from '../users/users.service';
import { CredentialAttempts } from './credential-attempts';

/** Changes to an account that need its password or reach every sign-in: password, email, deletion, role. */
@Injectable()
export class AccountService {
  constructor(
    private readonly users: UsersService,
    private readonly sessions: SessionService,
    private readonly families: RefreshFamilies,
    private readonly audit: AuditService,
    private readonly attempts: CredentialAttempts,
    private readonly emailChange: EmailChangeService,
    private readonly mfa: MfaService,
  ) {}

  /**
   * Revokes every other session and family. The caller's own sign-in survives: a cookie session moves to a
   * new id authenticated now (unless it was itself revoked while the change ran: then it ends, the cookie is
   * cleared, and the change stands); a token family stays, and the client refreshes for a working access token.
   */
  async changePassword(
    principal: Principal,
    passwords: { currentPassword: string; newPassword: string; code?: string },
    client: ClientInfo,
    request: Request,
    deviceToken?: string,
  ): Promise<void> {
    const user = await this.caller(principal);
    await this.confirmPassword(user, passwords.currentPassword, 'currentPassword', client, deviceToken);
    await this.mfa.verifyStepUp(user, passwords.code, client, deviceToken);
    const passwordHash = await this.users.hashNewPassword(
      passwords.newPassword,
      'newPassword',
      client.signal,
    );
    const ownFamily = principal.method === 'token' ? principal.sessionId : undefined;
    const revokedBefore = await this.users.transaction(async (manager) => {
      const stamp = await this.users.setPasswordHash(user.id, passwordHash, manager);
      await this.families.revokeAllFamilies(user.id, 'password_changed', ownFamily, manager);
      if (ownFamily) await this.families.redate(ownFamily, stamp, manager);
      await this.audit.record('password.changed', user.id, client, { method: principal.method }, manager);
      return stamp;
    });
    if (principal.method === 'session') {
      await this.sessions.revokeAll(user.id, principal.sessionId);
      await this.sessions.rotateId(request, { authAt: revokedBefore.getTime() });
    } else {
      await this.sessions.revokeAll(user.id);
    }
  }

  /**
   * The password is checked (and counted) like the password change's before the new address is: a stolen
   * session cannot use this route to learn which addresses have accounts. With a second factor the code
   * is checked (and counted) too: a stolen session and password alone cannot move the account elsewhere.
   */
  async changeEmail(
    principal: Principal,
    input: { newEmail: string; password: string; code?: string },
    client: ClientInfo,
    deviceToken: string | undefined,
  ): Promise<void> {
    const user = await this.caller(principal);
    await this.confirmPassword(user, input.password, 'password', client, deviceToken);
    await this.mfa.verifyStepUp(user, input.code, client, deviceToken);
    await this.emailChange.request(user, input.newEmail, client);
  }

  /**
   * The user row goes, and with it (by cascade) its families and database sessions; Redis ones follow.
   * The audit trail keeps its entries under the user id; AuditRetention erases their client data later.
   */
  async deleteAccount(
    principal: Principal,
    password: string,
    client: ClientInfo,
    request: Request,
    code: string | undefined,
    deviceToken?: string,
  ): Promise<void> {
    const user = await this.caller(principal);
    await this.confirmPassword(user, password, 'password', client, deviceToken);
    await this.mfa.verifyStepUp(user, code, client, deviceToken);
    await this.users.transaction(async (manager) => {
      // Locked as a demotion is, so two admins deleting themselves at once cannot both succeed.
      if (user.role === 'admin' && (await this.users.lockAdmins(manager)) <= 1) {
        throw AppError.validation('role', 'the last admin cannot delete their own account');
      }
      await this.audit.record('user.deleted', user.id, undefined, {}, manager);
      await this.users.delete(user.id, manager);
    });
    await this.sessions.revokeAll(user.id);
    if (principal.method === 'session') await this.sessions.end(request);
  }

  /** Applies on the user's next request: sessions read the role, access tokens carrying it are revoked. */
  async changeRole(admin: Principal, userId: string, role: Role, client: ClientInfo): Promise<User> {
    return this.users.transaction(async (manager) => {
      const user = await this.users.findById(userId, manager);
      if (!user) throw new AppError('NOT_FOUND');
      if (user.role === role) return user;
      // ADMIN_EMAIL cannot bring an admin back once its user exists, so the last admin keeps the role.
      if (user.role === 'admin' && (await this.users.lockAdmins(manager)) <= 1) {
        throw AppError.validation('role', 'the last admin cannot be demoted');
      }
      await this.users.setRole(userId, role, manager);
      await this.audit.record(
        'role.changed',
        userId,
        client,
        { from: user.role, to: role, by: admin.userId },
        manager,
      );
      return { ...user, role };
    });
  }

  private async caller(principal: Principal): Promise<User> {
    const user = await this.users.findById(principal.userId);
    // Deleted between the guard and here.
    if (!user) throw new AppError(principal.method === 'session' ? 'SESSION_INVALID' : 'TOKEN_REVOKED');
    return user;
  }

  /**
   * Re-proving the password is counted like a login attempt (before it is checked), so a stolen session
   * cannot guess it, not even in parallel; the owner's device token (the `did` cookie) passes a lock.
   * Also the second factor's routes (enrolment, removal) re-prove it here.
   */
  async confirmPassword(
    user: User,
    password: string,
    field: string,
    client: ClientInfo,
    deviceToken: string | undefined,
  ): Promise<void> {
    const passed = await this.attempts.check({ email: user.email, user, deviceToken }, client, (signal) =>
      this.users.checkPassword(user, password, signal),
    );
    if (!passed) throw AppError.validation(field, `${field} is not correct`);
  }
}
