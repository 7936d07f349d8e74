import { ApiProperty } from '@nestjs/swagger';
import { PasswordField, StringField } from '../../users/fields';

const CODE_DESCRIPTION = 'A 6-digit TOTP code, or one of the recovery codes (each works once)';

export class MfaChallengeDto {
  @ApiProperty({ enum: [true] }) mfaRequired!: true;
  @ApiProperty({ description: 'Send it to POST /api/auth/mfa/verify with a code; works once, for 5 minutes' })
  mfaToken!: string;
  @ApiProperty({ enum: ['totp', 'recovery_code'], isArray: true }) methods!: ('totp' | 'recovery_code')[];
}

export class MfaVerifyDto {
  @StringField(128, { api: { description: 'The mfaToken of the login that answered mfaRequired' } })
  mfaToken!: string;

  @StringField(64, { api: { description: CODE_DESCRIPTION, example: '123456' } })
  code!: string;

  @StringField(256, {
    optional: true,
    api: {
      description: 'For clients without cookies: the deviceToken of an earlier login (else the did cookie)',
    },
  })
  deviceToken?: string;
}

export class MfaCodeDto {
  @StringField(64, { api: { description: CODE_DESCRIPTION, example: '123456' } })
  code!: string;
}

export class MfaEnrolDto {
  @PasswordField()
  password!: string;
}

export class MfaDisableDto {
  @PasswordField()
  password!: string;

  @StringField(64, { api: { description: CODE_DESCRIPTION, example: '123456' } })
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
