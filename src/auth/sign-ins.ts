import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { AuditService } from '../audit/audit.service';
import { AppError } from '../common/app-error';
import type { ClientInfo } from '../common/client-info';
import type { AuthMethod, Principal } from '../common/principal';
import { SessionService } from '../session/session.service';
import { RefreshFamilies } from '../token/refresh-families';
import { UsersService } from '../users/users.service';

/** One thing a user is signed in with: a cookie session or a refresh family, under its public id. */
export interface SignIn {
  id: string;
  method: AuthMethod;
  userAgent: string | null;
  ip: string | null;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  current: boolean;
}

/**
 * The registry of a user's sign-ins across both methods: cookie sessions (by their public id, never the
 * cookie's secret id) and refresh families (by family id, the access tokens' `sid`).
 */
@Injectable()
export class SignIns {
  constructor(
    private readonly users: UsersService,
    private readonly sessions: SessionService,
    private readonly families: RefreshFamilies,
    private readonly audit: AuditService,
  ) {}

  async list(principal: Principal): Promise<SignIn[]> {
    const sessions = await this.sessions.list(principal.userId);
    const families = await this.families.listFamilies(principal.userId);
    const signIns: Omit<SignIn, 'current'>[] = [
      ...sessions.map((session) => ({ ...session, method: 'session' as const })),
      ...families.map((family) => ({
        id: family.id,
        method: 'token' as const,
        userAgent: family.userAgent,
        ip: family.ip,
        createdAt: family.createdAt,
        lastSeenAt: family.lastUsedAt,
        expiresAt: family.expiresAt < family.idleExpiresAt ? family.expiresAt : family.idleExpiresAt,
      })),
    ];
    return signIns
      .map((signIn) => ({
        ...signIn,
        current: signIn.method === principal.method && signIn.id === principal.sessionId,
      }))
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /** Revokes one of the caller's sign-ins; NOT_FOUND for an id that is not theirs, whoever's it is. */
  async revoke(principal: Principal, id: string, client: ClientInfo, request: Request): Promise<void> {
    const { userId } = principal;
    let method: AuthMethod;
    if (principal.method === 'session' && id === principal.sessionId) {
      await this.sessions.end(request);
      method = 'session';
    } else if (await this.sessions.revoke(userId, id)) {
      method = 'session';
    } else if (await this.families.revokeFamily(userId, id, 'revoked')) {
      method = 'token';
    } else {
      throw new AppError('NOT_FOUND');
    }
    await this.audit.record('session.revoked', userId, client, { method, id });
  }

  /**
   * Logout-all and admin revoke. The user's stamp is written first: from that instant every session and
   * access token of the user is refused on every instance, so the cleanup after it can only tidy.
   */
  async revokeAll(userId: string, client: ClientInfo, detail: Record<string, unknown> = {}): Promise<void> {
    const families = await this.users.transaction(async (manager) => {
      await this.users.revokeAll(userId, manager);
      return this.families.revokeAllFamilies(userId, 'logout_all', undefined, manager);
    });
    const sessions = await this.sessions.revokeAll(userId);
    await this.audit.record('sessions.revoked_all', userId, client, { ...detail, sessions, families });
  }

  /** The caller's own logout-all: also ends the request's session, so its cookie is cleared. */
  async revokeAllOf(principal: Principal, client: ClientInfo, request: Request): Promise<void> {
    await this.revokeAll(principal.userId, client);
    if (principal.method === 'session') await this.sessions.end(request);
  }

  async revokeAsAdmin(admin: Principal, userId: string, client: ClientInfo): Promise<void> {
    if (!(await this.users.findById(userId))) throw new AppError('NOT_FOUND');
    await this.revokeAll(userId, client, { by: admin.userId });
  }
}
