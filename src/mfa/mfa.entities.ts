import { Column, CreateDateColumn, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/** A user's TOTP factor: pending until `confirmedAt`, its secret sealed under an MFA key (`keyId`). */
@Entity({ name: 'mfa_totp' })
export class TotpFactor {
  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @Column({ name: 'secret_ciphertext', type: 'text' })
  secretCiphertext!: string;

  @Column({ name: 'key_id', type: 'varchar', length: 32 })
  keyId!: string;

  @Column({ name: 'confirmed_at', type: 'timestamptz', nullable: true })
  confirmedAt!: Date | null;

  /** The newest time step whose code was accepted; codes of this step and earlier are refused. */
  @Column({ name: 'last_used_step', type: 'bigint', nullable: true })
  lastUsedStep!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}

@Entity({ name: 'mfa_recovery_codes' })
export class RecoveryCode {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @Column({ name: 'code_hash', type: 'varchar', length: 64 })
  codeHash!: string;

  @Column({ name: 'used_at', type: 'timestamptz', nullable: true })
  usedAt!: Date | null;
}

export type LoginMethod = 'session' | 'token';

/** A login past its password, waiting for a second factor; the client holds the token, we its hash. */
@Entity({ name: 'mfa_login_tokens' })
export class PendingLogin {
  @PrimaryColumn({ name: 'token_hash', type: 'varchar', length: 64 })
  tokenHash!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @Column({ type: 'varchar', length: 16 })
  method!: LoginMethod;

  @Column({ name: 'refresh_in_cookie', type: 'boolean', default: false })
  refreshInCookie!: boolean;

  /**
   * The user's revocation stamp when the password was checked. Stamps only move forward, so a different
   * stamp at completion means a password change or revocation came after the check: the login is void.
   */
  @Column({ name: 'revoked_before', type: 'timestamptz', nullable: true })
  revokedBefore!: Date | null;

  /** When the password check began: the completed login is dated from it, as a login without a factor is. */
  @Column({ name: 'checked_at', type: 'timestamptz' })
  checkedAt!: Date;

  /** Codes tried, counted before each is checked. */
  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  @Column({ name: 'used_at', type: 'timestamptz', nullable: true })
  usedAt!: Date | null;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;
}
