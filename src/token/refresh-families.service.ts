import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { EntityManager, IsNull, MoreThan, Not, QueryFailedError, Repository } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { AppError } from '../common/app-error';
import type { ClientInfo } from '../common/client-info';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { Revocations } from '../revocation/revocations.service';
import type { User } from '../users/user.entity';
import { UsersService, UserState } from '../users/users.service';
import { AccessTokens } from './access-tokens';
import { RefreshCsrf } from './refresh-csrf';
import { RefreshFamily } from './refresh-family.entity';
import { RefreshToken } from './refresh-token.entity';
import { newOpaqueToken, open, seal, sha256 } from './replay-box';

/** What login and refresh hand the client. `csrfToken` is set when the refresh token travels in a cookie. */
export interface TokenGrant {
  accessToken: string;
  accessExpiresAt: Date;
  refreshToken: string;
  refreshExpiresAt: Date;
  familyId: string;
  csrfToken?: string;
  user: UserState;
}

/** How a refresh token reached us: a cookie-borne one must come with the family's CSRF token. */
export interface Presentation {
  refreshToken: string;
  viaCookie: boolean;
  csrfHeader?: string;
}

interface SealedGrant {
  accessToken: string;
  accessExpiresAt: string;
  refreshToken: string;
  refreshExpiresAt: string;
}

export type RevokeReason =
  'logout' | 'reuse' | 'revoked' | 'logout_all' | 'password_changed' | 'password_reset';

/** What the revocation check of an access token needs of its family. */
export interface FamilyState {
  userId: string;
  revoked: boolean;
}

const stateKey = (familyId: string): string => `family:${familyId}`;

const FOREIGN_KEY_VIOLATION = '23503';

type Rotation =
  { kind: 'granted'; grant: Omit<TokenGrant, 'csrfToken'> } | { kind: 'reused' } | { kind: 'stale' };

/**
 * Refresh families: one per login, holding a chain of opaque refresh tokens of which at most one is live.
 * Rotation runs in one transaction holding the family row lock, so concurrent refreshes of one token
 * serialise: the first rotates, the others replay its answer inside the grace window.
 */
@Injectable()
export class RefreshFamilies {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectRepository(RefreshFamily) private readonly families: Repository<RefreshFamily>,
    private readonly users: UsersService,
    private readonly accessTokens: AccessTokens,
    private readonly audit: AuditService,
    private readonly revocations: Revocations,
    private readonly csrf: RefreshCsrf,
  ) {}

  /** Whose the family is and whether it is revoked; null when unknown. From memory while trusted. */
  state(familyId: string): Promise<FamilyState | null> {
    return this.revocations.read(stateKey(familyId), async () => {
      const family = await this.families.findOne({
        where: { id: familyId },
        select: { id: true, userId: true, revokedAt: true },
      });
      return family ? Object.freeze({ userId: family.userId, revoked: family.revokedAt !== null }) : null;
    });
  }

  /**
   * A new family for a login that passed its credential check (`mfa`: and a second factor), dated from when
   * the password check began (`checkedAt`, ms): its access token and its refreshes are revoked by any
   * revocation stamp written since.
   */
  async start(
    user: User,
    client: ClientInfo,
    viaCookie: boolean,
    checkedAt: number,
    mfa = false,
  ): Promise<TokenGrant> {
    const now = new Date();
    // Dated no earlier than the stamp on the row it read, which may lie up to a second ahead.
    const authAt = new Date(Math.max(checkedAt, user.revokedBefore?.getTime() ?? 0));
    const { refreshTtlSeconds, refreshIdleTtlSeconds } = this.config.token;
    const expiresAt = new Date(now.getTime() + refreshTtlSeconds * 1000);
    const familyId = randomUUID();
    const csrfToken = viaCookie ? this.csrf.tokenFor(familyId) : undefined;
    const refreshToken = newOpaqueToken();
    const family = await this.families.manager
      .transaction(async (manager) => {
        const created = await manager.getRepository(RefreshFamily).save(
          manager.getRepository(RefreshFamily).create({
            id: familyId,
            userId: user.id,
            authAt,
            lastUsedAt: now,
            expiresAt,
            idleExpiresAt: earliest(new Date(now.getTime() + refreshIdleTtlSeconds * 1000), expiresAt),
            userAgent: client.userAgent ?? null,
            ip: client.ip?.slice(0, 64) ?? null,
            csrfTokenHash: csrfToken ? sha256(csrfToken) : null,
            mfa,
            revokedAt: null,
            revokeReason: null,
          }),
        );
        await manager.getRepository(RefreshToken).insert({
          familyId: created.id,
          tokenHash: sha256(refreshToken),
          parentId: null,
        });
        await this.audit.record(
          'login.succeeded',
          user.id,
          client,
          { method: 'token', familyId: created.id, mfa },
          manager,
        );
        return created;
      })
      .catch((error: unknown) => {
        // The user was deleted while the password was being checked.
        if (isForeignKeyViolation(error)) throw new AppError('INVALID_CREDENTIALS');
        throw error;
      });
    const access = this.accessTokens.mint(user, family.id, checkedAt, mfa);
    return {
      accessToken: access.token,
      accessExpiresAt: access.expiresAt,
      refreshToken,
      refreshExpiresAt: family.idleExpiresAt,
      familyId: family.id,
      csrfToken,
      user,
    };
  }

  /** Rotates a refresh token; replays the first answer inside the grace window, and kills the family after. */
  async refresh(presentation: Presentation, client: ClientInfo): Promise<TokenGrant> {
    // Everything, audit included, happens in the one transaction: the family lock orders concurrent calls.
    const rotation = await this.families.manager.transaction((manager) =>
      this.rotate(manager, presentation, client),
    );
    if (rotation.kind === 'reused') throw new AppError('REFRESH_TOKEN_REUSED');
    if (rotation.kind === 'stale') throw new AppError('REFRESH_TOKEN_INVALID');
    return {
      ...rotation.grant,
      csrfToken: presentation.viaCookie ? presentation.csrfHeader : undefined,
    };
  }

  private async rotate(
    manager: EntityManager,
    presentation: Presentation,
    client: ClientInfo,
  ): Promise<Rotation> {
    const tokens = manager.getRepository(RefreshToken);
    const families = manager.getRepository(RefreshFamily);
    const tokenHash = sha256(presentation.refreshToken);
    // One statement finds the presented token's family and takes its lock: concurrent refreshes queue here.
    const family = await families
      .createQueryBuilder('family')
      .where((query) => {
        const familyOfToken = query
          .subQuery()
          .select('token.familyId')
          .from(RefreshToken, 'token')
          .where('token.tokenHash = :tokenHash', { tokenHash })
          .getQuery();
        return `family.id = ${familyOfToken}`;
      })
      .setLock('pessimistic_write')
      .getOne();
    if (!family || family.revokedAt !== null) throw new AppError('REFRESH_TOKEN_INVALID');
    if (presentation.viaCookie) assertFamilyCsrf(family, presentation.csrfHeader);
    // Read under the lock: a concurrent refresh may have rotated it while this one waited.
    const token = await tokens.findOneByOrFail({ tokenHash });
    const now = new Date();

    if (token.usedAt !== null) {
      const graceEnds = token.usedAt.getTime() + this.config.token.reuseGraceSeconds * 1000;
      const replay =
        now.getTime() < graceEnds && token.replayBox
          ? open(presentation.refreshToken, token.replayBox)
          : undefined;
      if (replay !== undefined) {
        const sealed = JSON.parse(replay) as SealedGrant;
        const holder = await this.users.state(family.userId, manager);
        if (!holder) throw new AppError('REFRESH_TOKEN_INVALID');
        return {
          kind: 'granted',
          grant: {
            user: holder,
            accessToken: sealed.accessToken,
            accessExpiresAt: new Date(sealed.accessExpiresAt),
            refreshToken: sealed.refreshToken,
            refreshExpiresAt: new Date(sealed.refreshExpiresAt),
            familyId: family.id,
          },
        };
      }
      await this.revokeLocked(manager, family, 'reuse', now);
      await this.audit.record(
        'token.reuse_detected',
        family.userId,
        client,
        { familyId: family.id },
        manager,
      );
      return { kind: 'reused' };
    }

    if (now >= family.expiresAt || now >= family.idleExpiresAt) throw new AppError('REFRESH_TOKEN_INVALID');
    const user = await this.users.state(family.userId, manager);
    if (!user) throw new AppError('REFRESH_TOKEN_INVALID');
    if (user.revokedBefore && family.authAt < user.revokedBefore) {
      // Its login's password check predates a revocation that could not see the family yet.
      await this.revokeLocked(manager, family, 'revoked', now);
      return { kind: 'stale' };
    }

    const idleExpiresAt = earliest(
      new Date(now.getTime() + this.config.token.refreshIdleTtlSeconds * 1000),
      family.expiresAt,
    );
    const refreshToken = newOpaqueToken();
    const access = this.accessTokens.mint(user, family.id, undefined, family.mfa);
    const sealed: SealedGrant = {
      accessToken: access.token,
      accessExpiresAt: access.expiresAt.toISOString(),
      refreshToken,
      refreshExpiresAt: idleExpiresAt.toISOString(),
    };
    const nextId = randomUUID();
    const graceCutoff = new Date(now.getTime() - this.config.token.reuseGraceSeconds * 1000);
    // Replay boxes past their window serve nobody; dropping them keeps old answers out of the database.
    await tokens
      .createQueryBuilder()
      .update()
      .set({ replayBox: null })
      .where('family_id = :familyId AND used_at < :graceCutoff', { familyId: family.id, graceCutoff })
      .execute();
    await tokens.update(
      { id: token.id },
      { usedAt: now, replacedBy: nextId, replayBox: seal(presentation.refreshToken, JSON.stringify(sealed)) },
    );
    await tokens.insert({
      id: nextId,
      familyId: family.id,
      tokenHash: sha256(refreshToken),
      parentId: token.id,
    });
    await families.update({ id: family.id }, { lastUsedAt: now, idleExpiresAt });
    await this.audit.record('token.refreshed', user.id, client, { familyId: family.id }, manager);
    return {
      kind: 'granted',
      grant: {
        user,
        accessToken: access.token,
        accessExpiresAt: access.expiresAt,
        refreshToken,
        refreshExpiresAt: idleExpiresAt,
        familyId: family.id,
      },
    };
  }

  /**
   * Token logout: revokes the caller's family (and with it the access token), and the family of the
   * presented refresh token when that is another of the caller's.
   */
  async logout(
    userId: string,
    familyId: string,
    presentation: Presentation | undefined,
    client: ClientInfo,
  ): Promise<void> {
    await this.families.manager.transaction(async (manager) => {
      const families = manager.getRepository(RefreshFamily);
      const ids = new Set([familyId]);
      if (presentation) {
        const token = await manager.getRepository(RefreshToken).findOne({
          where: { tokenHash: sha256(presentation.refreshToken) },
          select: { id: true, familyId: true },
        });
        const family = token ? await families.findOneBy({ id: token.familyId, userId }) : null;
        if (family && presentation.viaCookie) assertFamilyCsrf(family, presentation.csrfHeader);
        if (family) ids.add(family.id);
      }
      for (const id of ids) {
        const family = await families.findOne({ where: { id, userId }, lock: { mode: 'pessimistic_write' } });
        if (family) await this.revokeLocked(manager, family, 'logout', new Date());
      }
      await this.audit.record('logout', userId, client, { method: 'token', familyId }, manager);
    });
  }

  /** The user's live families, newest first, for the session registry. */
  listFamilies(userId: string): Promise<RefreshFamily[]> {
    const now = new Date();
    return this.families.find({
      where: { userId, revokedAt: IsNull(), expiresAt: MoreThan(now), idleExpiresAt: MoreThan(now) },
      order: { lastUsedAt: 'DESC' },
    });
  }

  /** Revokes one of the user's families; false when it is not theirs or already revoked. */
  async revokeFamily(
    userId: string,
    familyId: string,
    reason: RevokeReason,
    manager: EntityManager = this.families.manager,
  ): Promise<boolean> {
    const result = await manager
      .getRepository(RefreshFamily)
      .update({ id: familyId, userId, revokedAt: IsNull() }, { revokedAt: new Date(), revokeReason: reason });
    const revoked = (result.affected ?? 0) > 0;
    if (revoked) await this.revocations.changed(manager, [stateKey(familyId)]);
    return revoked;
  }

  /**
   * Re-dates the caller's own family to a revocation stamp it survives (a password change made with a
   * bearer token), so that its next refresh is not taken for a login that predates the change.
   */
  async redate(familyId: string, authAt: Date, manager: EntityManager): Promise<void> {
    await manager.getRepository(RefreshFamily).update({ id: familyId }, { authAt });
  }

  /** Revokes every live family of the user, optionally sparing one (the caller's own); returns how many. */
  async revokeAllFamilies(
    userId: string,
    reason: RevokeReason,
    exceptFamilyId?: string,
    manager: EntityManager = this.families.manager,
  ): Promise<number> {
    const result = await manager
      .createQueryBuilder()
      .update(RefreshFamily)
      .set({ revokedAt: new Date(), revokeReason: reason })
      .where({ userId, revokedAt: IsNull(), ...(exceptFamilyId ? { id: Not(exceptFamilyId) } : {}) })
      .returning(['id'])
      .execute();
    const revoked = (result.raw as { id: string }[]).map((row) => stateKey(row.id));
    if (revoked.length > 0) await this.revocations.changed(manager, revoked);
    return revoked.length;
  }

  private async revokeLocked(
    manager: EntityManager,
    family: RefreshFamily,
    reason: RevokeReason,
    now: Date,
  ): Promise<void> {
    if (family.revokedAt !== null) return;
    await manager
      .getRepository(RefreshFamily)
      .update({ id: family.id }, { revokedAt: now, revokeReason: reason });
    await manager.getRepository(RefreshToken).update({ familyId: family.id }, { replayBox: null });
    await this.revocations.changed(manager, [stateKey(family.id)]);
  }
}

function isForeignKeyViolation(error: unknown): boolean {
  return (
    error instanceof QueryFailedError &&
    (error.driverError as { code?: string }).code === FOREIGN_KEY_VIOLATION
  );
}

function earliest(a: Date, b: Date): Date {
  return a < b ? a : b;
}

/** A cookie-borne refresh token must come with the family's CSRF token in X-CSRF-Token. */
function assertFamilyCsrf(family: RefreshFamily, presented: string | undefined): void {
  if (!family.csrfTokenHash || presented === undefined) throw new AppError('CSRF_FAILED');
  const a = Buffer.from(sha256(presented));
  const b = Buffer.from(family.csrfTokenHash);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new AppError('CSRF_FAILED');
}
