import { ApiProperty } from '@nestjs/swagger';

export class UserDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'alice@example.com' }) email!: string;
  @ApiProperty({ type: String, nullable: true, example: 'Alice' }) displayName!: string | null;
  @ApiProperty({ enum: ['user', 'admin'] }) role!: 'user' | 'admin';
  @ApiProperty({ description: 'Whether a link mailed to this address was used' }) emailVerified!: boolean;
  @ApiProperty({ description: 'Whether the user has a confirmed second factor (TOTP)' }) mfaEnabled!: boolean;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
}

export class UserEnvelopeDto {
  @ApiProperty({ type: UserDto }) user!: UserDto;
}
