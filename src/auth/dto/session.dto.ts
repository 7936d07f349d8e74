import { ApiProperty } from '@nestjs/swagger';
import { EmailLookupField, PasswordField, StringField } from '../../users/fields';
import { UserDto } from './user.response';

export class LoginDto {
  @EmailLookupField()
  email!: string;

  @PasswordField()
  password!: string;

  @StringField(256, {
    optional: true,
    api: {
      description:
        'The device token a previous login handed out, for clients without cookies (others send the `did` cookie)',
    },
  })
  deviceToken?: string;
}

export class SessionLoginResponseDto {
  @ApiProperty({ type: UserDto }) user!: UserDto;
  @ApiProperty({ description: 'Send it back in X-CSRF-Token on every unsafe request' }) csrfToken!: string;
  @ApiProperty({ format: 'date-time', description: 'The earlier of the idle and absolute expiry' })
  expiresAt!: string;
}

export class SessionInfoResponseDto {
  @ApiProperty({ type: UserDto }) user!: UserDto;
  @ApiProperty() csrfToken!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time', description: 'The earlier of the idle and absolute expiry' })
  expiresAt!: string;
  @ApiProperty({ format: 'date-time', description: 'When the session expires if unused until then' })
  idleExpiresAt!: string;
}
