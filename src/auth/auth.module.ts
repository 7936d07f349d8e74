import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { AuditModule } from '../audit/audit.module';
import { SessionModule } from '../session/session.module';
import { UsersModule } from '../users/users.module';
import { LocalStrategy } from './local.strategy';
import { LoginService } from './login.service';
import { RegisterController } from './register.controller';
import { SessionAuthController } from './session-auth.controller';

@Module({
  imports: [PassportModule, UsersModule, AuditModule, SessionModule],
  controllers: [RegisterController, SessionAuthController],
  providers: [LoginService, LocalStrategy],
})
export class AuthModule {}
