import { ApiProperty } from '@nestjs/swagger';
import { IsUUID } from 'class-validator';
import { NewPasswordField, PasswordField, StringField } from '../../users/fields';
import { UserDto } from './user.response';

const STEP_UP_CODE = 'Required when the user has a second factor: a TOTP code or a recovery code';

export class AuthInfoDto {
  @ApiProperty({ enum: ['session', 'token'] }) method!: 'session' | 'token';
  @ApiProperty({ format: 'uuid', description: 'The session public id, or the refresh family id (`sid`)' })
  sessionId!: string;
  @ApiProperty({ format: 'date-time', description: 'When this credential stops working unless renewed' })
  expiresAt!: string;
  @ApiProperty({ description: 'Whether this sign-in passed a second factor' }) mfa!: boolean;
}

export class MeResponseDto {
  @ApiProperty({ type: UserDto }) user!: UserDto;
  @ApiProperty({ type: AuthInfoDto }) auth!: AuthInfoDto;
}

export class SignInDto {
  @ApiProperty({ format: 'uuid', description: 'Opaque id to revoke it by; never the credential itself' })
  id!: string;
  @ApiProperty({ enum: ['session', 'token'] }) method!: 'session' | 'token';
  @ApiProperty({ type: String, nullable: true }) userAgent!: string | null;
  @ApiProperty({ type: String, nullable: true }) ip!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) lastSeenAt!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
  @ApiProperty({ description: 'The sign-in this request was made with' }) current!: boolean;
}

export class SignInIdParams {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all')
  id!: string;
}

export class ChangePasswordDto {
  @PasswordField()
  currentPassword!: string;

  @NewPasswordField()
  newPassword!: string;

  @StringField(64, { optional: true, api: { description: STEP_UP_CODE } })
  code?: string;
}

export class DeleteAccountDto {
  @PasswordField()
  password!: string;

  @StringField(64, { optional: true, api: { description: STEP_UP_CODE } })
  code?: string;
}
