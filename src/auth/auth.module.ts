import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { AuditModule } from '../audit/audit.module';
import { RateLimitModule } from '../rate-limit/rate-limit.module';
import { SessionModule } from '../session/session.module';
import { TokenModule } from '../token/token.module';
import { UsersModule } from '../users/users.module';
import { LocalStrategy } from './local.strategy';
import { LoginService } from './login.service';
import { RegisterController } from './register.controller';
import { SessionAuthController } from './session-auth.controller';
import { TokenAuthController } from './token-auth.controller';

@Module({
  imports: [PassportModule, UsersModule, AuditModule, SessionModule, TokenModule, RateLimitModule],
  controllers: [RegisterController, SessionAuthController, TokenAuthController],
  providers: [LoginService, LocalStrategy],
})
export class AuthModule {}
