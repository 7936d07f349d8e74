import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import { UserDto } from './user.response';

export class LoginDto {
  @ApiProperty({ example: 'alice@example.com' })
  @IsString()
  @MaxLength(320)
  email!: string;

  @ApiProperty({ example: 'correct horse battery staple' })
  @IsString()
  @MaxLength(1024)
  password!: string;

  @ApiPropertyOptional({
    description:
      'The device token a previous login handed out, for clients without cookies (others send the `did` cookie)',
  })
  @IsOptional()
  @IsString()
  @MaxLength(256)
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
