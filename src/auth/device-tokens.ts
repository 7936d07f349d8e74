import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { loadOrCreateSessionSecret } from '../session/session-secret';
import type { User } from '../users/user.entity';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PART = /^[A-Za-z0-9_-]{22,64}$/;

/**
 * Device tokens (OWASP "device cookies"): every successful login hands one out, and a password check that
 * presents a valid one for that account counts on the device's own counter and passes the account's lock,
 * so nobody can lock an owner out of their own account. A token is `<userId>.<deviceId>.<mac>`, an HMAC
 * over the user, the device and the user's password hash: it names one account, and every password write
 * (change or reset, each a fresh bcrypt salt) voids every token of that account without a table of them.
 * The key is derived from the session secret (SESSION_SECRET, or the generated one every instance shares).
 */
@Injectable()
export class DeviceTokens implements OnModuleInit {
  private key = Buffer.alloc(0);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  async onModuleInit(): Promise<void> {
    const secret = this.config.session.secret ?? (await loadOrCreateSessionSecret(this.dataSource));
    this.key = Buffer.from(hkdfSync('sha256', secret, '', 'device-token', 32));
  }

  issue(user: Pick<User, 'id' | 'passwordHash'>): string {
    const deviceId = randomBytes(16).toString('base64url');
    return `${user.id}.${deviceId}.${this.mac(user, deviceId)}`;
  }

  /** The device id when the token is valid for this user as it is now; otherwise undefined. */
  recognise(token: string | undefined, user: Pick<User, 'id' | 'passwordHash'> | null): string | undefined {
    if (!token || !user) return undefined;
    const [userId, deviceId, mac, ...rest] = token.split('.');
    if (rest.length > 0 || !UUID.test(userId ?? '') || !PART.test(deviceId ?? '') || !PART.test(mac ?? '')) {
      return undefined;
    }
    if (userId !== user.id) return undefined;
    const expected = Buffer.from(this.mac(user, deviceId));
    const given = Buffer.from(mac);
    return expected.length === given.length && timingSafeEqual(expected, given) ? deviceId : undefined;
  }

  private mac(user: Pick<User, 'id' | 'passwordHash'>, deviceId: string): string {
    const credential = createHash('sha256').update(user.passwordHash).digest('base64url');
    return createHmac('sha256', this.key).update(`${user.id}.${deviceId}.${credential}`).digest('base64url');
  }
}
