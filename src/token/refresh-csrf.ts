import { Injectable, OnModuleInit } from '@nestjs/common';
import { createHmac } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AppError } from '../common/app-error';
import { loadOrCreateSecret } from '../database/app-secrets';
import { RefreshFamily } from './refresh-family.entity';
import { RefreshToken } from './refresh-token.entity';
import { sha256 } from './replay-box';

/**
 * The CSRF token that escorts a cookie-borne refresh token. It is derived from the family id under a
 * secret kept in the database, rather than drawn at random, so that a page which reloaded and lost it can
 * be given the same token again (GET /api/auth/token/csrf) while the database still holds only its hash.
 */
@Injectable()
export class RefreshCsrf implements OnModuleInit {
  private key?: string;

  constructor(private readonly dataSource: DataSource) {}

  async onModuleInit(): Promise<void> {
    this.key = await loadOrCreateSecret(this.dataSource, 'refresh.csrf');
  }

  tokenFor(familyId: string): string {
    return createHmac('sha256', this.key!).update(familyId).digest('base64url');
  }

  /**
   * The CSRF token of the family whose live refresh token this is. A rotated, revoked or expired token,
   * and a family whose stored hash does not match (the secret changed), get REFRESH_TOKEN_INVALID.
   */
  async forRefreshToken(refreshToken: string): Promise<string> {
    const now = new Date();
    const family = await this.dataSource
      .getRepository(RefreshFamily)
      .createQueryBuilder('family')
      .innerJoin(RefreshToken, 'token', 'token.familyId = family.id')
      .where('token.tokenHash = :tokenHash', { tokenHash: sha256(refreshToken) })
      .andWhere('token.usedAt IS NULL')
      .andWhere('family.revokedAt IS NULL')
      .andWhere('family.expiresAt > :now AND family.idleExpiresAt > :now', { now })
      .getOne();
    const csrfToken = family ? this.tokenFor(family.id) : undefined;
    if (!family || !csrfToken || family.csrfTokenHash !== sha256(csrfToken)) {
      throw new AppError('REFRESH_TOKEN_INVALID');
    }
    return csrfToken;
  }
}
