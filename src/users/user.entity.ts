import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

export type Role = 'user' | 'admin';
export const ROLES: Role[] = ['user', 'admin'];

@Entity({ name: 'users' })
export class User {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /** Normalised: trimmed, NFKC, lower-cased. */
  @Column({ type: 'varchar', length: 254, unique: true })
  email!: string;

  @Column({ name: 'display_name', type: 'varchar', length: 100, nullable: true })
  displayName!: string | null;

  @Column({ name: 'password_hash', type: 'varchar', length: 100 })
  passwordHash!: string;

  /** Set when a link mailed to `email` was used (verification, email change, password reset). */
  @Column({ name: 'email_verified', type: 'boolean', default: false })
  emailVerified!: boolean;

  @Column({ type: 'varchar', length: 16, default: 'user' })
  role!: Role;

  /** Sessions and access tokens that authenticated before this instant are revoked. */
  @Column({ name: 'revoked_before', type: 'timestamptz', nullable: true })
  revokedBefore!: Date | null;

  /** Access tokens issued before this instant are revoked too (a role change: tokens carry the role). */
  @Column({ name: 'tokens_revoked_before', type: 'timestamptz', nullable: true })
  tokensRevokedBefore!: Date | null;

  /** Whether the user has a confirmed second factor (the factor itself lives in the mfa module's tables). */
  @Column({ name: 'mfa_enabled', type: 'boolean', default: false })
  mfaEnabled!: boolean;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/** The user as clients see it: never a hash. */
export interface PublicUser {
  id: string;
  email: string;
  displayName: string | null;
  role: Role;
  emailVerified: boolean;
  mfaEnabled: boolean;
  createdAt: string;
}

export function toPublicUser(
  user: Pick<User, 'id' | 'email' | 'displayName' | 'role' | 'emailVerified' | 'mfaEnabled' | 'createdAt'>,
): PublicUser {
  return {
    id: user.id,
    email: user.email,
    displayName: user.displayName,
    role: user.role,
    emailVerified: user.emailVerified,
    mfaEnabled: user.mfaEnabled,
    createdAt: user.createdAt.toISOString(),
  };
}
