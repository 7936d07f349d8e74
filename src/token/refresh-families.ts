import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { EntityManager, IsNull, MoreThan, Not, QueryFailedError, Repository } from 'typeorm';
import type { AuditType } from '../audit/audit-event.entity';
import { AppError } from '../common/app-error';
import type { ClientInfo } from '../common/client-info';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { PreparedStatement, PreparedStatements } from '../database/prepared-statements';
import { Revocations } from '../revocation/revocations';
import type { User } from '../users/user.entity';
import { UsersService, UserState } from '../users/users.service';
import { AccessTokens } from './access-tokens';
import { RefreshCsrf } from './refresh-csrf';
import { RefreshFamily } from './refresh-family.entity';
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

/** What a refresh reads first: the presented token and its family, as the database stands. */
interface PresentedToken {
  token_id: string;
  family_id: string;
  user_id: string;
  csrf_token_hash: string | null;
  revoked_at: Date | null;
  expires_at: Date;
  idle_expires_at: Date;
  last_used_at: Date;
  live_token_id: string | null;
  replay_token_id: string | null;
  replay_box: string | null;
  /** The login passed a second factor: its access tokens carry `amr: ["pwd", "otp"]`. */
  mfa: boolean;
}

const FIND_PRESENTED: PreparedStatement = {
  name: 'refresh_find_presented',
  text: `
  SELECT t.id AS token_id, f.id AS family_id, f.user_id, f.csrf_token_hash, f.revoked_at, f.expires_at,
         f.idle_expires_at, f.last_used_at, f.live_token_id, f.replay_token_id, f.replay_box, f.mfa
  FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
  WHERE t.token_hash = $1`,
};

type RotationOutcome = 'rotated' | 'replay' | 'reused' | 'stale' | 'invalid';

/**
 * One refresh of the token the first read found live, as a single statement (its own transaction):
 *
 * - `family` locks the family row. A concurrent refresh of the same family waits here until the other's
 *   statement commits, and then reads the row as that one left it (READ COMMITTED re-reads a row it had to
 *   wait for), so every decision below is taken on the newest state, in family order.
 * - `decision`: revoked or past its absolute or idle end, `invalid`; the presented token live but the
 *   family dated (`auth_at`) before the user's `revoked_before`, `stale` (its login's password check
 *   predates a revocation that could not see the family yet); the presented token still the live one,
 *   `rotated`; spent by the last rotation less than the grace window ago (so that rotation's answer is
 *   the live token), `replay`; anything else is a spent token whose answer is no longer live, `reused`.
 * - `rotated`: the family names the successor live and keeps the sealed answer ($7) for the presented
 *   token's replays, replacing the previous rotation's; the token is spent; the successor is inserted (after
 *   the spend, which it reads, so the one-live-token index never sees two); `token.refreshed` is audited.
 * - `reused` and `stale`: the family is revoked (for `reuse`, or `revoked`) and its replay answer dropped;
 *   reuse audits `token.reuse_detected`. The caller tells the revocation cache once the statement has
 *   returned (committed).
 * The user's stamp is read from the statement's snapshot while the family row is re-read after any wait
 * for its lock: a password change that re-dates the caller's own family (`redate`) locks that row, so a
 * refresh racing it sees either both the old stamp and date or both the new ones.
 *
 * The audit rows go straight into AuditModule's `audit_events`, so that each commits with its write.
 *
 * $1 family, $2 presented token id, $3 now, $4 grace cutoff (now - REFRESH_REUSE_GRACE), $5 successor id,
 * $6 successor hash, $7 sealed answer, $8 new idle end, $9 client ip, $10 user agent, $11 and $12 the audit
 * types of a rotation and of reuse.
 */
const ROTATE: PreparedStatement = {
  name: 'refresh_rotate',
  text: `
  WITH family AS (
    SELECT id, user_id, auth_at, live_token_id, replay_token_id, replay_box, last_used_at, revoked_at,
           expires_at, idle_expires_at
    FROM refresh_families WHERE id = $1::uuid
    FOR UPDATE
  ), decision AS (
    SELECT id, user_id, replay_box,
      CASE
        WHEN revoked_at IS NOT NULL THEN 'invalid'
        WHEN live_token_id = $2::uuid
          AND auth_at < (SELECT u.revoked_before FROM users u WHERE u.id = family.user_id) THEN 'stale'
        WHEN live_token_id = $2::uuid AND $3::timestamptz < expires_at AND $3::timestamptz < idle_expires_at
          THEN 'rotated'
        WHEN live_token_id = $2::uuid THEN 'invalid'
        WHEN replay_token_id = $2::uuid AND last_used_at > $4::timestamptz THEN 'replay'
        ELSE 'reused'
      END AS outcome
    FROM family
  ), renewed AS (
    UPDATE refresh_families f
    SET live_token_id = $5::uuid, replay_token_id = $2::uuid, replay_box = $7::text,
        last_used_at = $3::timestamptz, idle_expires_at = $8::timestamptz
    FROM decision d WHERE f.id = d.id AND d.outcome = 'rotated'
  ), spent AS (
    UPDATE refresh_tokens t SET used_at = $3::timestamptz, replaced_by = $5::uuid
    FROM decision d WHERE t.id = $2::uuid AND d.outcome = 'rotated'
    RETURNING t.family_id
  ), successor AS (
    INSERT INTO refresh_tokens (id, family_id, token_hash, parent_id)
    SELECT $5::uuid, family_id, $6::text, $2::uuid FROM spent
  ), revoked AS (
    UPDATE refresh_families f
    SET revoked_at = $3::timestamptz, replay_box = NULL,
        revoke_reason = CASE d.outcome WHEN 'reused' THEN 'reuse' ELSE 'revoked' END
    FROM decision d WHERE f.id = d.id AND d.outcome IN ('reused', 'stale')
  ), audited AS (
    INSERT INTO audit_events (type, user_id, ip, user_agent, detail)
    SELECT CASE outcome WHEN 'rotated' THEN $11::text ELSE $12::text END, user_id, $9::text, $10::text,
           jsonb_build_object('familyId', id)
    FROM decision WHERE outcome IN ('rotated', 'reused')
  )
  SELECT outcome, CASE outcome WHEN 'replay' THEN replay_box END AS replay_box FROM decision`,
};

/** Reuse found by the first read: revokes the family unless already revoked, and audits it if it did. */
const REVOKE_FOR_REUSE: PreparedStatement = {
  name: 'refresh_revoke_for_reuse',
  text: `
  WITH revoked AS (
    UPDATE refresh_families SET revoked_at = $2::timestamptz, revoke_reason = 'reuse', replay_box = NULL
    WHERE id = $1::uuid AND revoked_at IS NULL
    RETURNING id, user_id
  ), audited AS (
    INSERT INTO audit_events (type, user_id, ip, user_agent, detail)
    SELECT $5::text, user_id, $3::text, $4::text, jsonb_build_object('familyId', id) FROM revoked
  )
  SELECT id FROM revoked`,
};

/** Token logout: the family of the presented refresh token, if it is the caller's. */
const FIND_OWN_FAMILY = `
  SELECT f.id, f.csrf_token_hash
  FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
  WHERE t.token_hash = $1 AND f.user_id = $2::uuid`;

/**
 * Token logout in one statement: revokes the caller's family and the presented token's (when the caller's)
 * unless already revoked, and audits the logout whatever it revoked. $1 family ids, $2 user, $3 now, $4 ip,
 * $5 user agent, $6 the audit type, $7 the caller's family.
 */
const LOGOUT = `
  WITH revoked AS (
    UPDATE refresh_families SET revoked_at = $3::timestamptz, revoke_reason = 'logout', replay_box = NULL
    WHERE id = ANY($1::uuid[]) AND user_id = $2::uuid AND revoked_at IS NULL
    RETURNING id
  ), audited AS (
    INSERT INTO audit_events (type, user_id, ip, user_agent, detail)
    VALUES ($6::text, $2::uuid, $4::text, $5::text, jsonb_build_object('method', 'token', 'familyId', $7::text))
  )
  SELECT id FROM revoked`;

/**
 * A login's family, its first (live) refresh token and the `login.succeeded` audit row in one statement.
 * $1 user, $2 now, $3 absolute end, $4 idle end, $5 user agent, $6 ip, $7 CSRF token hash, $8 token id,
 * $9 token hash, $10 the audit type, $11 the family id (chosen first: the CSRF token derives from it),
 * $12 when the login's password check began.
 */
const START_FAMILY = `
  WITH family AS (
    INSERT INTO refresh_families
      (id, user_id, auth_at, last_used_at, expires_at, idle_expires_at, user_agent, ip, csrf_token_hash,
       live_token_id, mfa)
    VALUES ($11::uuid, $1::uuid, $12::timestamptz, $2::timestamptz, $3::timestamptz, $4::timestamptz, $5::text,
            $6::text, $7::text, $8::uuid, $13::boolean)
    RETURNING id
  ), first_token AS (
    INSERT INTO refresh_tokens (id, family_id, token_hash) SELECT $8::uuid, id, $9::text FROM family
  ), audited AS (
    INSERT INTO audit_events (type, user_id, ip, user_agent, detail)
    SELECT $10::text, $1::uuid, $6::text, $5::text,
           jsonb_build_object('method', 'token', 'familyId', id, 'mfa', $13::boolean)
    FROM family
  )
  SELECT id FROM family`;

/**
 * Refresh families: one per login, holding a chain of opaque refresh tokens of which at most one is live.
 * Rotation runs in one statement holding the family row lock, so concurrent refreshes of one token
 * serialise: the first rotates, the others replay its answer inside the grace window.
 * A family column that its access tokens carry (as a second factor's flag would) is written by START_FAMILY
 * and read by FIND_PRESENTED, whose row a refresh mints from; ROTATE need not know it.
 */
@Injectable()
export class RefreshFamilies {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectRepository(RefreshFamily) private readonly families: Repository<RefreshFamily>,
    private readonly users: UsersService,
    private readonly accessTokens: AccessTokens,
    private readonly revocations: Revocations,
    private readonly csrf: RefreshCsrf,
    private readonly statements: PreparedStatements,
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
   * revocation stamp written since. One statement, audit row included.
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
    const idleExpiresAt = earliest(new Date(now.getTime() + refreshIdleTtlSeconds * 1000), expiresAt);
    const familyId = randomUUID();
    const csrfToken = viaCookie ? this.csrf.tokenFor(familyId) : undefined;
    const refreshToken = newOpaqueToken();
    await this.families.manager
      .query(START_FAMILY, [
        user.id,
        now,
        expiresAt,
        idleExpiresAt,
        client.userAgent?.slice(0, 512) ?? null,
        client.ip?.slice(0, 64) ?? null,
        csrfToken ? sha256(csrfToken) : null,
        randomUUID(),
        sha256(refreshToken),
        'login.succeeded' satisfies AuditType,
        familyId,
        authAt,
        mfa,
      ])
      .catch((error: unknown) => {
        // The user was deleted while the password was being checked.
        if (isForeignKeyViolation(error)) throw new AppError('INVALID_CREDENTIALS');
        throw error;
      });
    const access = this.accessTokens.mint(user, familyId, checkedAt, mfa);
    return {
      accessToken: access.token,
      accessExpiresAt: access.expiresAt,
      refreshToken,
      refreshExpiresAt: idleExpiresAt,
      familyId,
      csrfToken,
      user,
    };
  }

  /**
   * Rotates a refresh token; replays the last rotation's answer inside the grace window while that answer
   * is still live, and kills the family otherwise. Two statements, no transaction held across the signing:
   * a read that finds the token's family, then (for the live token) one statement that locks the family
   * and rotates, replays or revokes by what it finds under the lock.
   */
  async refresh(presentation: Presentation, client: ClientInfo): Promise<TokenGrant> {
    const found = await this.findPresented(sha256(presentation.refreshToken));
    if (!found || found.revoked_at !== null) throw new AppError('REFRESH_TOKEN_INVALID');
    if (presentation.viaCookie) assertFamilyCsrf(found.csrf_token_hash, presentation.csrfHeader);
    const csrfToken = presentation.viaCookie ? presentation.csrfHeader : undefined;
    const now = new Date();

    if (found.live_token_id !== found.token_id) {
      // Spent before this request began; the family only moves forward, so what the read saw still holds.
      const replay = this.isReplayable(found, now)
        ? await this.replay(presentation, found.family_id, found.user_id, found.replay_box)
        : undefined;
      if (replay) return { ...replay, csrfToken };
      await this.revokeForReuse(found.family_id, now, client);
      throw new AppError('REFRESH_TOKEN_REUSED');
    }

    if (now >= found.expires_at || now >= found.idle_expires_at) throw new AppError('REFRESH_TOKEN_INVALID');
    const user = await this.users.state(found.user_id);
    if (!user) throw new AppError('REFRESH_TOKEN_INVALID');
    const idleExpiresAt = earliest(
      new Date(now.getTime() + this.config.token.refreshIdleTtlSeconds * 1000),
      found.expires_at,
    );
    const refreshToken = newOpaqueToken();
    const access = this.accessTokens.mint(user, found.family_id, undefined, found.mfa);
    const sealed: SealedGrant = {
      accessToken: access.token,
      accessExpiresAt: access.expiresAt.toISOString(),
      refreshToken,
      refreshExpiresAt: idleExpiresAt.toISOString(),
    };
    const rows = await this.statements.rows<{ outcome: RotationOutcome; replay_box: string | null }>(ROTATE, [
      found.family_id,
      found.token_id,
      now,
      this.graceCutoff(now),
      randomUUID(),
      sha256(refreshToken),
      seal(presentation.refreshToken, JSON.stringify(sealed)),
      idleExpiresAt,
      client.ip?.slice(0, 64) ?? null,
      client.userAgent?.slice(0, 512) ?? null,
      'token.refreshed' satisfies AuditType,
      'token.reuse_detected' satisfies AuditType,
    ]);
    const outcome = rows[0]?.outcome ?? 'invalid';
    switch (outcome) {
      case 'rotated':
        return {
          user,
          accessToken: access.token,
          accessExpiresAt: access.expiresAt,
          refreshToken,
          refreshExpiresAt: idleExpiresAt,
          familyId: found.family_id,
          csrfToken,
        };
      case 'replay': {
        // A concurrent refresh of the same token rotated it first: its answer, sealed under this token.
        const replay = await this.replay(presentation, found.family_id, found.user_id, rows[0].replay_box);
        if (replay) return { ...replay, csrfToken };
        // Only a box altered in the database fails to open; the token is then treated as stolen.
        await this.revokeForReuse(found.family_id, now, client);
        throw new AppError('REFRESH_TOKEN_REUSED');
      }
      case 'reused':
        await this.revocations.changed(this.families.manager, [stateKey(found.family_id)]);
        throw new AppError('REFRESH_TOKEN_REUSED');
      case 'stale':
        await this.revocations.changed(this.families.manager, [stateKey(found.family_id)]);
        throw new AppError('REFRESH_TOKEN_INVALID');
      case 'invalid':
        throw new AppError('REFRESH_TOKEN_INVALID');
    }
  }

  /** The presented token and its family as they stand; no lock. */
  private async findPresented(tokenHash: string): Promise<PresentedToken | undefined> {
    const rows = await this.statements.rows<PresentedToken>(FIND_PRESENTED, [tokenHash]);
    return rows[0];
  }

  private graceCutoff(now: Date): Date {
    return new Date(now.getTime() - this.config.token.reuseGraceSeconds * 1000);
  }

  /** The last rotation spent this token, within the window: its answer (the live token) may be replayed. */
  private isReplayable(found: PresentedToken, now: Date): boolean {
    return (
      found.replay_token_id === found.token_id &&
      found.replay_box !== null &&
      found.last_used_at > this.graceCutoff(now)
    );
  }

  /** The first answer again, or undefined when the box does not open under the presented token. */
  private async replay(
    presentation: Presentation,
    familyId: string,
    userId: string,
    box: string | null,
  ): Promise<Omit<TokenGrant, 'csrfToken'> | undefined> {
    const opened = box === null ? undefined : open(presentation.refreshToken, box);
    if (opened === undefined) return undefined;
    const sealed = JSON.parse(opened) as SealedGrant;
    const holder = await this.users.state(userId);
    if (!holder) throw new AppError('REFRESH_TOKEN_INVALID');
    return {
      user: holder,
      accessToken: sealed.accessToken,
      accessExpiresAt: new Date(sealed.accessExpiresAt),
      refreshToken: sealed.refreshToken,
      refreshExpiresAt: new Date(sealed.refreshExpiresAt),
      familyId,
    };
  }

  /** Reuse: the family dies (refresh and access tokens) and the event is audited, in one statement. */
  private async revokeForReuse(familyId: string, now: Date, client: ClientInfo): Promise<void> {
    const rows = await this.statements.rows(REVOKE_FOR_REUSE, [
      familyId,
      now,
      client.ip?.slice(0, 64) ?? null,
      client.userAgent?.slice(0, 512) ?? null,
      'token.reuse_detected' satisfies AuditType,
    ]);
    if (rows.length > 0) await this.revocations.changed(this.families.manager, [stateKey(familyId)]);
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
    const ids = [familyId];
    if (presentation) {
      const [presented] = await this.families.manager.query<{ id: string; csrf_token_hash: string | null }[]>(
        FIND_OWN_FAMILY,
        [sha256(presentation.refreshToken), userId],
      );
      if (presented && presentation.viaCookie) {
        assertFamilyCsrf(presented.csrf_token_hash, presentation.csrfHeader);
      }
      if (presented && presented.id !== familyId) ids.push(presented.id);
    }
    const revoked = await this.families.manager.query<{ id: string }[]>(LOGOUT, [
      ids,
      userId,
      new Date(),
      client.ip?.slice(0, 64) ?? null,
      client.userAgent?.slice(0, 512) ?? null,
      'logout' satisfies AuditType,
      familyId,
    ]);
    if (revoked.length > 0) {
      await this.revocations.changed(
        this.families.manager,
        revoked.map((row) => stateKey(row.id)),
      );
    }
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
      .update(
        { id: familyId, userId, revokedAt: IsNull() },
        { revokedAt: new Date(), revokeReason: reason, replayBox: null },
      );
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
      .set({ revokedAt: new Date(), revokeReason: reason, replayBox: null })
      .where({ userId, revokedAt: IsNull(), ...(exceptFamilyId ? { id: Not(exceptFamilyId) } : {}) })
      .returning(['id'])
      .execute();
    const revoked = (result.raw as { id: string }[]).map((row) => stateKey(row.id));
    if (revoked.length > 0) await this.revocations.changed(manager, revoked);
    return revoked.length;
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
function assertFamilyCsrf(csrfTokenHash: string | null, presented: string | undefined): void {
  if (!csrfTokenHash || presented === undefined) throw new AppError('CSRF_FAILED');
  const a = Buffer.from(sha256(presented));
  const b = Buffer.from(csrfTokenHash);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new AppError('CSRF_FAILED');
}
