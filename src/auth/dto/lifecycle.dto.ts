import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';

export class ForgotPasswordDto {
  @ApiProperty({ example: 'alice@example.com', maxLength: 254 })
  @IsString()
  @MaxLength(320)
  email!: string;
}

/** `code` is the second factor's, for accounts that have one. */
export class ResetPasswordDto {
  @ApiProperty({ description: 'The token from the mailed /reset-password link' })
  @IsString()
  @MaxLength(256)
  token!: string;

  @ApiProperty({ minLength: 8, maxLength: 128 })
  @IsString()
  @MaxLength(1024)
  newPassword!: string;

  @ApiPropertyOptional({ description: 'A second-factor code, when the account has a second factor' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  code?: string;
}

export class VerifyEmailDto {
  @ApiProperty({ description: 'The token from a mailed /verify-email or /confirm-email link' })
  @IsString()
  @MaxLength(256)
  token!: string;
}

export class ChangeEmailDto {
  @ApiProperty({ example: 'alice@new.example.com', maxLength: 254 })
  @IsString()
  @MaxLength(320)
  newEmail!: string;

  @ApiProperty({ description: 'The current password' })
  @IsString()
  @MaxLength(1024)
  password!: string;

  @ApiPropertyOptional({ description: 'A second-factor code, when the account has a second factor' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  code?: string;
}
