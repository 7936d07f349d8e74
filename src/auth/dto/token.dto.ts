import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional, IsString, MaxLength } from 'class-validator';
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
  @ApiPropertyOptional({ description: 'The refresh token; omit it when it travels in the `rt` cookie' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  refreshToken?: string;
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
