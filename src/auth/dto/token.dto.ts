import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional } from 'class-validator';
import { StringField } from '../../users/fields';
import { LoginDto } from './session.dto';
import { UserDto } from './user.response';

/** The session login's body, plus where the refresh token should travel. */
export class TokenLoginDto extends LoginDto {
  @ApiPropertyOptional({
    description: 'Deliver the refresh token in the HttpOnly `rt` cookie instead of the body',
  })
  @IsOptional()
  @IsBoolean()
  refreshTokenInCookie?: boolean;
}

export class RefreshTokenDto {
  @StringField(512, {
    optional: true,
    api: {
      nullable: true,
      description: 'The refresh token; omit it (or send null) when it travels in the `rt` cookie',
    },
  })
  refreshToken?: string | null;
}

export class TokenResponseDto {
  @ApiProperty({ enum: ['Bearer'] }) tokenType!: 'Bearer';
  @ApiProperty({ description: 'JWT access token (typ at+jwt)' }) accessToken!: string;
  @ApiProperty({ description: 'Seconds until the access token expires', example: 900 }) expiresIn!: number;
  @ApiPropertyOptional({ description: 'Opaque refresh token; absent when delivered in the `rt` cookie' })
  refreshToken?: string;
  @ApiProperty({ description: 'Seconds until the refresh token expires if unused', example: 604800 })
  refreshExpiresIn!: number;
  @ApiPropertyOptional({ description: 'With cookie delivery: send it as X-CSRF-Token on refresh and logout' })
  csrfToken?: string;
  @ApiProperty({ type: UserDto }) user!: UserDto;
  @ApiPropertyOptional({
    description:
      "Login only: this device's token (also set as the `did` cookie). A client without cookies sends it " +
      'back as `deviceToken` in its next login, which then counts on this device and passes an account lock',
  })
  deviceToken?: string;
}

export class RefreshCsrfResponseDto {
  @ApiProperty({ description: 'Send it as X-CSRF-Token on a cookie-borne refresh or logout' })
  csrfToken!: string;
}
