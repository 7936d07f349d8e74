import { Module } from '@nestjs/common';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { AuditModule } from '../audit/audit.module';
import { CredentialsModule } from '../auth/credentials.module';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { UsersModule } from '../users/users.module';
import { PendingLogin, RecoveryCode, TotpFactor } from './mfa.entities';
import { loadOrCreateMfaKey, MfaKeyring } from './mfa-keyring';
import { MfaService } from './mfa.service';
import { TotpClock } from './totp-clock';

/** The second factor: TOTP secrets (sealed), recovery codes, pending logins; used by the auth routes. */
@Module({
  imports: [
    TypeOrmModule.forFeature([TotpFactor, RecoveryCode, PendingLogin]),
    UsersModule,
    AuditModule,
    CredentialsModule,
  ],
  providers: [
    MfaService,
    TotpClock,
    {
      provide: MfaKeyring,
      inject: [APP_CONFIG, getDataSourceToken()],
      useFactory: async (config: AppConfig, dataSource: DataSource): Promise<MfaKeyring> =>
        new MfaKeyring(
          config.mfa.encryptionKey ?? (await loadOrCreateMfaKey(dataSource)),
          config.mfa.previousEncryptionKeys,
        ),
    },
  ],
  exports: [MfaService],
})
export class MfaModule {}
