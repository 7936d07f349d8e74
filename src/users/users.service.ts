import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, FindOptionsSelect, ILike, QueryFailedError, Repository } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { AppError } from '../common/app-error';
import type { ClientInfo } from '../common/client-info';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { Revocations } from '../revocation/revocations';
import { emailProblem, normalizeEmail, passwordProblem } from './credentials';
import { PasswordHasher } from './password-hasher';
import { Role, User } from './user.entity';

export interface Registration {
  email: string;
  password: string;
  displayName?: string;
}

export interface UserPage {
  items: User[];
  total: number;
}

const STATE_COLUMNS = {
  id: true,
  email: true,
  displayName: true,
  role: true,
  emailVerified: true,
  mfaEnabled: true,
  createdAt: true,
  revokedBefore: true,
  tokensRevokedBefore: true,
} as const satisfies FindOptionsSelect<User>;

/** What authenticating a request needs of a user, and what it shows of them: everything but the hash. */
export type UserState = Readonly<Pick<User, keyof typeof STATE_COLUMNS>>;

const UNIQUE_VIOLATION = '23505';

const stateKey = (userId: string): string => `user:${userId}`;

function emailTakenOr(error: unknown): unknown {
  const unique =
    error instanceof QueryFailedError && (error.driverError as { code?: string }).code === UNIQUE_VIOLATION;
  return unique ? new AppError('EMAIL_TAKEN') : error;
}

/** The only code that touches the users table. */
@Injectable()
export class UsersService implements OnApplicationBootstrap {
  private readonly logger = new Logger(UsersService.name);

  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    private readonly hasher: PasswordHasher,
    private readonly audit: AuditService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly revocations: Revocations,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const { adminEmail, adminPassword } = this.config.auth;
    if (!adminEmail || !adminPassword) return;
    const email = normalizeEmail(adminEmail);
    if (await this.findByEmail(email)) return;
    try {
      await this.create({ email, password: adminPassword }, 'admin', undefined);
      this.logger.log(`created admin ${email} from ADMIN_EMAIL`);
    } catch (error) {
      if (error instanceof AppError && error.code === 'EMAIL_TAKEN') return;
      throw error;
    }
  }

  /** `alongside` runs in the transaction that creates the user (the verification mail is written there). */
  register(
    input: Registration,
    client: ClientInfo,
    alongside?: (user: User, manager: EntityManager) => Promise<void>,
  ): Promise<User> {
    return this.create(input, 'user', client, alongside);
  }

  private async create(
    input: Registration,
    role: Role,
    client: ClientInfo | undefined,
    alongside?: (user: User, manager: EntityManager) => Promise<void>,
  ): Promise<User> {
    const problem = emailProblem(input.email);
    if (problem) throw AppError.validation('email', problem);
    const email = normalizeEmail(input.email);
    const weak = passwordProblem(input.password);
    if (weak) throw AppError.validation('password', weak);
    const passwordHash = await this.hasher.hash(input.password);
    try {
      return await this.users.manager.transaction(async (manager) => {
        const user = await manager.getRepository(User).save(
          manager.getRepository(User).create({
            email,
            passwordHash,
            role,
            displayName: input.displayName?.trim() || null,
            // The operator who set ADMIN_EMAIL vouches for that address; anyone else proves it by mail.
            emailVerified: role === 'admin',
          }),
        );
        await this.audit.record('user.registered', user.id, client, { role }, manager);
        await alongside?.(user, manager);
        return user;
      });
    } catch (error) {
      throw emailTakenOr(error);
    }
  }

  /** Marks the address verified, only if it is still the user's address; false when it is not. */
  async markEmailVerified(userId: string, email: string, manager: EntityManager): Promise<boolean> {
    const result = await manager.getRepository(User).update({ id: userId, email }, { emailVerified: true });
    await this.revocations.changed(manager, [stateKey(userId)]);
    return (result.affected ?? 0) > 0;
  }

  /**
   * Moves the account to a new, verified address; EMAIL_TAKEN when another account has it by now (the
   * unique index decides between two accounts racing for one address).
   */
  async changeEmail(userId: string, newEmail: string, manager: EntityManager): Promise<void> {
    try {
      await manager
        .getRepository(User)
        .update({ id: userId }, { email: normalizeEmail(newEmail), emailVerified: true });
    } catch (error) {
      throw emailTakenOr(error);
    }
    await this.revocations.changed(manager, [stateKey(userId)]);
  }

  /** Pass the transaction's manager when reading inside one (the embedded database has one connection). */
  findById(id: string, manager: EntityManager = this.users.manager): Promise<User | null> {
    return manager.getRepository(User).findOneBy({ id });
  }

  /**
   * The user as each authenticated request checks it (role, revocation stamps) and `GET /api/me` shows
   * it; null once deleted. Served from memory while the revocation cache is trusted. Inside a transaction
   * pass its manager (one that has not written this user), so a miss never waits for a second connection.
   */
  state(id: string, manager: EntityManager = this.users.manager): Promise<UserState | null> {
    return this.revocations.read(stateKey(id), async () => {
      const user = await manager.getRepository(User).findOne({ where: { id }, select: STATE_COLUMNS });
      return user ? Object.freeze(user) : null;
    });
  }

  findByEmail(rawEmail: string): Promise<User | null> {
    return this.users.findOneBy({ email: normalizeEmail(rawEmail) });
  }

  /**
   * Compares a password with the user's hash; with no user, does the same work and fails. Callers go
   * through the auth module's CredentialAttempts, which counts the attempt first.
   */
  checkPassword(user: User | null, password: string, signal?: AbortSignal): Promise<boolean> {
    return user
      ? this.hasher.verify(password, user.passwordHash, signal)
      : this.hasher.verifyNothing(password, signal);
  }

  async list(page: number, limit: number, emailFilter?: string): Promise<UserPage> {
    const filter = emailFilter ? normalizeEmail(emailFilter).replace(/[\\%_]/g, (c) => `\\${c}`) : undefined;
    const [items, total] = await this.users.findAndCount({
      where: filter ? { email: ILike(`%${filter}%`) } : {},
      order: { createdAt: 'ASC', id: 'ASC' },
      skip: (page - 1) * limit,
      take: limit,
    });
    return { items, total };
  }

  /** Applies the password policy and hashes, outside any transaction: bcrypt must not hold a connection. */
  async hashNewPassword(newPassword: string, field = 'newPassword', signal?: AbortSignal): Promise<string> {
    const weak = passwordProblem(newPassword, field);
    if (weak) throw AppError.validation(field, weak);
    return this.hasher.hash(newPassword, signal);
  }

  /** Stores a hash from hashNewPassword and revokes everything that authenticated before now. */
  setPasswordHash(userId: string, passwordHash: string, manager: EntityManager): Promise<Date> {
    return this.stamp(userId, 'revokedBefore', manager, { passwordHash });
  }

  /**
   * Locks every admin's row until the transaction ends and says how many there are, so two admins demoting
   * each other at once cannot both succeed and leave none.
   */
  async lockAdmins(manager: EntityManager): Promise<number> {
    const admins = await manager.getRepository(User).find({
      where: { role: 'admin' },
      select: { id: true },
      lock: { mode: 'pessimistic_write' },
    });
    return admins.length;
  }

  /** Sessions read the role on each request; access tokens carry it, so they are revoked. */
  async setRole(userId: string, role: Role, manager: EntityManager): Promise<void> {
    await this.stamp(userId, 'tokensRevokedBefore', manager, { role });
  }

  /** Written by the mfa module in the transaction that confirms or removes the factor. */
  async setMfaEnabled(userId: string, enabled: boolean, manager: EntityManager): Promise<void> {
    await manager.getRepository(User).update({ id: userId }, { mfaEnabled: enabled });
    await this.revocations.changed(manager, [stateKey(userId)]);
  }

  revokeAll(userId: string, manager: EntityManager = this.users.manager): Promise<Date> {
    return this.stamp(userId, 'revokedBefore', manager);
  }

  /**
   * Moves a revocation stamp forward. Stamps are whole seconds, like the access tokens' `iat`: a stamp
   * revokes what is dated before it, and what is issued after it is dated no earlier than it (AccessTokens,
   * SessionService). So each stamp lies past both earlier stamps: a credential issued in the same second
   * as an earlier stamp, and dated to it, is still caught by the next one.
   */
  private async stamp(
    userId: string,
    column: 'revokedBefore' | 'tokensRevokedBefore',
    manager: EntityManager,
    changes: Partial<Pick<User, 'passwordHash' | 'role'>> = {},
  ): Promise<Date> {
    const result = await manager
      .createQueryBuilder()
      .update(User)
      .set({
        ...changes,
        [column]: () =>
          "GREATEST(:nextSecond, revoked_before + interval '1 second', tokens_revoked_before + interval '1 second')",
      })
      .setParameter('nextSecond', new Date((Math.floor(Date.now() / 1000) + 1) * 1000))
      .where('id = :userId', { userId })
      .returning(column === 'revokedBefore' ? 'revoked_before' : 'tokens_revoked_before')
      .execute();
    await this.revocations.changed(manager, [stateKey(userId)]);
    const row = (result.raw as Record<string, Date>[])[0];
    return row ? Object.values(row)[0] : new Date();
  }

  async delete(userId: string, manager: EntityManager): Promise<void> {
    await manager.getRepository(User).delete({ id: userId });
    await this.revocations.changed(manager, [stateKey(userId)]);
  }

  /**
   * Runs work in one database transaction; the users module owns the connection it is opened on. Revocation
   * state written through its manager (here or by RefreshFamilies) is invalidated on every instance when it
   * commits.
   */
  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.users.manager.transaction(work);
  }
}
