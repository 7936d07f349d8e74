import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { AuditModule } from '../audit/audit.module';
import { RateLimitModule } from '../rate-limit/rate-limit.module';
import { UsersModule } from '../users/users.module';
import { LocalStrategy } from './local.strategy';
import { LoginService } from './login.service';
import { RegisterController } from './register.controller';

@Module({
  imports: [PassportModule, UsersModule, AuditModule, RateLimitModule],
  controllers: [RegisterController],
  providers: [LoginService, LocalStrategy],
})
export class AuthModule {}
