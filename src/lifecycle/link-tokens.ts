import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash, randomBytes } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { AppError } from '../common/app-error';
import { returnedRows } from '../database/returned-rows';

export type LinkKind = 'password_reset' | 'email_verify' | 'email_change';

/** What a used link stands for: whose, which kind, and the address it was mailed to. */
export interface ConsumedLink {
  userId: string;
  kind: LinkKind;
  email: string;
}

interface LinkRow {
  user_id: string;
  kind: LinkKind;
  email: string;
}

/** 32 bytes from the CSPRNG, base64url: 43 characters. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

const hashOf = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/**
 * The single-use tokens that mailed links carry. The database keeps only their SHA-256; a token works once,
 * before it expires, and only while it is the newest of its kind for its user. Every kind is used up
 * through the one atomic `consume`.
 */
@Injectable()
export class LinkTokens {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** A new token for the user, written in the caller's transaction; older ones of the kind stop working. */
  async issue(
    manager: EntityManager,
    link: { kind: LinkKind; userId: string; email: string; ttlSeconds: number },
  ): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await manager.query('DELETE FROM link_tokens WHERE user_id = $1 AND kind = $2', [link.userId, link.kind]);
    await manager.query(
      `INSERT INTO link_tokens (token_hash, kind, user_id, email, expires_at)
       VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))`,
      [hashOf(token), link.kind, link.userId, link.email, link.ttlSeconds],
    );
    return token;
  }

  /**
   * The user of a token that would be accepted now, else undefined: lets a use case refuse a bad link
   * before costly work, and check what the user must add (a second factor) before the link is used up.
   */
  async liveUserId(token: string, kinds: readonly LinkKind[]): Promise<string | undefined> {
    if (!TOKEN_SHAPE.test(token)) return undefined;
    const rows = await this.dataSource.query<{ user_id: string }[]>(
      `SELECT user_id FROM link_tokens
        WHERE token_hash = $1 AND kind = ANY($2) AND used_at IS NULL AND expires_at > now()`,
      [hashOf(token), kinds],
    );
    return rows[0]?.user_id;
  }

  /**
   * Uses the token up in the caller's transaction, or throws LINK_INVALID: unknown, of another kind, used,
   * expired, or superseded by a newer token of its kind (even one issued by a transaction that committed
   * later). Two transactions consuming one token: the row lock makes the second re-check `used_at` after
   * the first commits, so exactly one gets it; if the first rolls back, the token is still good.
   */
  async consume(manager: EntityManager, token: string, kinds: readonly LinkKind[]): Promise<ConsumedLink> {
    if (!TOKEN_SHAPE.test(token)) throw new AppError('LINK_INVALID');
    const rows = returnedRows<LinkRow>(
      await manager.query<[LinkRow[], number]>(
        `UPDATE link_tokens t SET used_at = now()
          WHERE t.token_hash = $1 AND t.kind = ANY($2) AND t.used_at IS NULL AND t.expires_at > now()
            AND NOT EXISTS (SELECT 1 FROM link_tokens n
                             WHERE n.user_id = t.user_id AND n.kind = t.kind AND n.seq > t.seq)
          RETURNING t.user_id, t.kind, t.email`,
        [hashOf(token), kinds],
      ),
    );
    const row = rows[0];
    if (!row) throw new AppError('LINK_INVALID');
    return { userId: row.user_id, kind: row.kind, email: row.email };
  }
}
