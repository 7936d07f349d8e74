import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

export const AUDIT_TYPES = [
  'user.registered',
  'login.succeeded',
  'login.failed',
  'logout',
  'token.refreshed',
  'token.reuse_detected',
  'session.revoked',
  'sessions.revoked_all',
  'password.changed',
  'role.changed',
  'user.deleted',
  'password.reset_requested',
  'password.reset',
  'email.verified',
  'email.change_requested',
  'email.changed',
  'mfa.enabled',
  'mfa.disabled',
  'mfa.failed',
  'mfa.recovery_code_used',
] as const;
export type AuditType = (typeof AUDIT_TYPES)[number];

/** Append-only: rows are inserted and read; the one update erases a deleted user's IP and user agent. */
@Entity({ name: 'audit_events' })
export class AuditEvent {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 64 })
  type!: AuditType;

  @Column({ name: 'user_id', type: 'uuid', nullable: true })
  userId!: string | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  ip!: string | null;

  @Column({ name: 'user_agent', type: 'varchar', length: 512, nullable: true })
  userAgent!: string | null;

  @Column({ type: 'timestamptz', default: () => 'now()' })
  at!: Date;

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  detail!: Record<string, unknown>;
}
