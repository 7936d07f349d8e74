import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { RevocationModule } from '../revocation/revocation.module';
import { UsersModule } from '../users/users.module';
import { AccessTokens } from './access-tokens';
import { BearerAuthenticator } from './bearer-authenticator';
import { JwksController } from './jwks.controller';
import { JwtGuard } from './jwt.guard';
import { RefreshFamilies } from './refresh-families.service';
import { RefreshFamily } from './refresh-family.entity';
import { RefreshToken } from './refresh-token.entity';
import { SigningKeys } from './signing-keys';

/** Access tokens (signing keys, JWKS, bearer verification) and refresh families. */
@Module({
  imports: [TypeOrmModule.forFeature([RefreshFamily, RefreshToken]), UsersModule, RevocationModule],
  controllers: [JwksController],
  providers: [SigningKeys, AccessTokens, BearerAuthenticator, JwtGuard, RefreshFamilies],
  exports: [BearerAuthenticator, JwtGuard, RefreshFamilies],
})
export class TokenModule {}
