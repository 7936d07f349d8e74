import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { Request } from 'express';
import { Strategy } from 'passport-local';
import { clientInfoOf } from '../common/client-info';
import { User } from '../users/user.entity';
import { LoginService } from './login.service';

/** passport-local for both login routes: decides who the caller is; LoginService does the work. */
@Injectable()
export class LocalStrategy extends PassportStrategy(Strategy, 'local') {
  constructor(private readonly login: LoginService) {
    super({ usernameField: 'email', passwordField: 'password', passReqToCallback: true, session: false });
  }

  validate(request: Request, email: string, password: string): Promise<User> {
    return this.login.verifyCredentials(email, password, clientInfoOf(request));
  }
}
