import { Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { PassportModule } from '@nestjs/passport';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Clock } from '../common/clock';
import { PreparedStatements } from '../database/prepared-statements';
import { RevocationModule } from '../revocation/revocation.module';
import { UsersModule } from '../users/users.module';
import { AccessTokens } from './access-tokens';
import { JwksController } from './jwks.controller';
import { JwtGuard } from './jwt.guard';
import { RefreshCsrf } from './refresh-csrf';
import { JwtStrategy } from './jwt.strategy';
import { RefreshFamilies } from './refresh-families';
import { RefreshFamily } from './refresh-family.entity';
import { RefreshToken } from './refresh-token.entity';
import { SigningKeys } from './signing-keys';

/** Access tokens (signing keys, JWKS, the `jwt` strategy and its guard) and refresh families. */
@Module({
  imports: [
    TypeOrmModule.forFeature([RefreshFamily, RefreshToken]),
    // No defaults: each token is signed with the ring's current key, which rotates.
    JwtModule.register({}),
    PassportModule,
    UsersModule,
    RevocationModule,
  ],
  controllers: [JwksController],
  providers: [
    Clock,
    SigningKeys,
    AccessTokens,
    JwtStrategy,
    JwtGuard,
    RefreshFamilies,
    RefreshCsrf,
    PreparedStatements,
  ],
  exports: [JwtStrategy, JwtGuard, RefreshFamilies, RefreshCsrf],
})
export class TokenModule {}
