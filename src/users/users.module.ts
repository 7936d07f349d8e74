import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuditModule } from '../audit/audit.module';
import { RevocationModule } from '../revocation/revocation.module';
import { PasswordHasher } from './password-hasher';
import { User } from './user.entity';
import { UsersService } from './users.service';

@Module({
  imports: [TypeOrmModule.forFeature([User]), AuditModule, RevocationModule],
  providers: [UsersService, PasswordHasher],
  exports: [UsersService],
})
export class UsersModule {}
