import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

/**
 * One login's chain of refresh tokens; its id is the access tokens' `sid`. Revoking the family revokes
 * every refresh token and access token it issued.
 */
@Entity({ name: 'refresh_families' })
export class RefreshFamily {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  /**
   * When the password check that started the family began. A family dated before the user's revokedBefore
   * (its login was in flight across a password change, logout-all or admin revoke) never refreshes.
   */
  @Column({ name: 'auth_at', type: 'timestamptz' })
  authAt!: Date;

  /** The last rotation (or the login); the grace window of the last rotation runs from it. */
  @Column({ name: 'last_used_at', type: 'timestamptz' })
  lastUsedAt!: Date;

  /** Absolute end of the family (REFRESH_TOKEN_TTL after login). */
  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  /** Sliding end (REFRESH_IDLE_TTL after the last refresh), never past expiresAt. */
  @Column({ name: 'idle_expires_at', type: 'timestamptz' })
  idleExpiresAt!: Date;

  /** The one unused token; a refresh rotates only this one. */
  @Column({ name: 'live_token_id', type: 'uuid', nullable: true })
  liveTokenId!: string | null;

  /** The token the last rotation spent: presented again within the grace window, it gets `replayBox`. */
  @Column({ name: 'replay_token_id', type: 'uuid', nullable: true })
  replayTokenId!: string | null;

  /** The last rotation's answer sealed under a key only the spent token's holder can derive. */
  @Column({ name: 'replay_box', type: 'text', nullable: true, select: false })
  replayBox!: string | null;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @Column({ name: 'revoke_reason', type: 'varchar', length: 32, nullable: true })
  revokeReason!: string | null;

  @Column({ name: 'user_agent', type: 'varchar', length: 512, nullable: true })
  userAgent!: string | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  ip!: string | null;

  /** The login passed a second factor: every access token of the family carries `amr: ["pwd", "otp"]`. */
  @Column({ type: 'boolean', default: false })
  mfa!: boolean;

  /** Set when the refresh token travels in the `rt` cookie: the hash of the CSRF token that must escort it. */
  @Column({ name: 'csrf_token_hash', type: 'varchar', length: 64, nullable: true })
  csrfTokenHash!: string | null;
}
