import { ApiProperty } from '@nestjs/swagger';
import { IsString, MaxLength } from 'class-validator';

const CODE_DESCRIPTION = 'A 6-digit TOTP code, or one of the recovery codes (each works once)';

export class MfaChallengeDto {
  @ApiProperty({ enum: [true] }) mfaRequired!: true;
  @ApiProperty({ description: 'Send it to POST /api/auth/mfa/verify with a code; works once, for 5 minutes' })
  mfaToken!: string;
  @ApiProperty({ enum: ['totp', 'recovery_code'], isArray: true }) methods!: ('totp' | 'recovery_code')[];
}

export class MfaVerifyDto {
  @ApiProperty()
  @IsString()
  @MaxLength(128)
  mfaToken!: string;

  @ApiProperty({ description: CODE_DESCRIPTION, example: '123456' })
  @IsString()
  @MaxLength(64)
  code!: string;
}

export class MfaCodeDto {
  @ApiProperty({ description: CODE_DESCRIPTION, example: '123456' })
  @IsString()
  @MaxLength(64)
  code!: string;
}

export class MfaEnrolDto {
  @ApiProperty()
  @IsString()
  @MaxLength(1024)
  password!: string;
}

export class MfaDisableDto {
  @ApiProperty()
  @IsString()
  @MaxLength(1024)
  password!: string;

  @ApiProperty({ description: CODE_DESCRIPTION, example: '123456' })
  @IsString()
  @MaxLength(64)
  code!: string;
}

export class MfaEnrolmentDto {
  @ApiProperty({ description: 'The TOTP secret in base32, for typing into an authenticator app' })
  secret!: string;
  @ApiProperty({
    example: 'otpauth://totp/Auth%20service:alice%40example.com?issuer=Auth%20service&secret=…',
  })
  otpauthUrl!: string;
}

export class RecoveryCodesDto {
  @ApiProperty({ type: [String], description: 'Ten single-use codes, shown this once' })
  recoveryCodes!: string[];
}
