import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { Request } from 'express';
import { Strategy } from 'passport-local';
import { clientInfoOf } from '../common/client-info';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { presentedDeviceToken } from './device-cookie';
import { LoginService, VerifiedLogin } from './login.service';

/** passport-local for both login routes: decides who the caller is; LoginService does the work. */
@Injectable()
export class LocalStrategy extends PassportStrategy(Strategy, 'local') {
  constructor(
    private readonly login: LoginService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    super({ usernameField: 'email', passwordField: 'password', passReqToCallback: true, session: false });
  }

  validate(request: Request, email: string, password: string): Promise<VerifiedLogin> {
    const body = request.body as { deviceToken?: unknown };
    const fromBody = typeof body.deviceToken === 'string' ? body.deviceToken : undefined;
    const deviceToken = presentedDeviceToken(request.headers.cookie, this.config, fromBody);
    return this.login.verifyCredentials(email, password, deviceToken, clientInfoOf(request));
  }
}
