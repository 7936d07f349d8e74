import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { AuditModule } from '../audit/audit.module';
import { LifecycleModule } from '../lifecycle/lifecycle.module';
import { MfaModule } from '../mfa/mfa.module';
import { RateLimitModule } from '../rate-limit/rate-limit.module';
import { SessionModule } from '../session/session.module';
import { TokenModule } from '../token/token.module';
import { UsersModule } from '../users/users.module';
import { AccountService } from './account.service';
import { AdminController } from './admin.controller';
import { AnyAuthGuard } from './any-auth.guard';
import { CredentialsModule } from './credentials.module';
import { LifecycleController } from './lifecycle.controller';
import { LocalStrategy } from './local.strategy';
import { LoginService } from './login.service';
import { MeController } from './me.controller';
import { MfaController, MfaLoginController } from './mfa.controller';
import { RegisterController } from './register.controller';
import { RegistrationService } from './registration.service';
import { RolesGuard } from './roles.guard';
import { SessionAuthController } from './session-auth.controller';
import { SignIns } from './sign-ins';
import { TokenAuthController } from './token-auth.controller';
import { TokenRefreshService } from './token-refresh.service';
import { TokenResponder } from './token-response';

@Module({
  imports: [
    PassportModule,
    UsersModule,
    AuditModule,
    SessionModule,
    TokenModule,
    RateLimitModule,
    CredentialsModule,
    MfaModule,
    LifecycleModule,
  ],
  controllers: [
    RegisterController,
    LifecycleController,
    SessionAuthController,
    TokenAuthController,
    MeController,
    AdminController,
    MfaLoginController,
    MfaController,
  ],
  providers: [
    LoginService,
    RegistrationService,
    TokenRefreshService,
    LocalStrategy,
    AnyAuthGuard,
    RolesGuard,
    SignIns,
    AccountService,
    TokenResponder,
  ],
})
export class AuthModule {}
