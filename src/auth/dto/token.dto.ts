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

/** What both shapes of the token response carry. */
abstract class TokenGrantDto {
  @ApiProperty({ enum: ['Bearer'] }) tokenType!: 'Bearer';
  @ApiProperty({ description: 'JWT access token (typ at+jwt)' }) accessToken!: string;
  @ApiProperty({ type: 'integer', description: 'Seconds until the access token expires', example: 900 })
  expiresIn!: number;
  @ApiProperty({
    type: 'integer',
    description: 'Seconds until the refresh token expires if unused',
    example: 604800,
  })
  refreshExpiresIn!: number;
  @ApiProperty({ type: UserDto }) user!: UserDto;
  @ApiPropertyOptional({
    description:
      "Login only: this device's token (also set as the `did` cookie). A client without cookies sends it " +
      'back as `deviceToken` in its next login, which then counts on this device and passes an account lock',
  })
  deviceToken?: string;
}

/** The refresh token in the body: a client that keeps it itself (mobile apps, servers). */
export class BodyTokenResponseDto extends TokenGrantDto {
  @ApiProperty({ description: 'Opaque refresh token, for /api/auth/token/refresh and /logout' })
  refreshToken!: string;
}

/** The refresh token in the HttpOnly `rt` cookie (`refreshTokenInCookie: true`), out of a page's reach. */
export class CookieTokenResponseDto extends TokenGrantDto {
  @ApiProperty({
    description:
      'The refresh token is in the `rt` cookie: send this as X-CSRF-Token on refresh and logout ' +
      '(GET /api/auth/token/csrf gives it back after a reload)',
  })
  csrfToken!: string;
}

export type TokenResponse = BodyTokenResponseDto | CookieTokenResponseDto;

/** The token response's two shapes, for `oneOf` (with ApiExtraModels of both classes). */
export const TOKEN_RESPONSE_SHAPES = [BodyTokenResponseDto, CookieTokenResponseDto];

export class RefreshCsrfResponseDto {
  @ApiProperty({ description: 'Send it as X-CSRF-Token on a cookie-borne refresh or logout' })
  csrfToken!: string;
}
