import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';
import { ERROR_CODES, ErrorCode } from './error-codes';

class ErrorDetailDto {
  @ApiProperty({ example: 'email' }) field!: string;
  @ApiProperty({ example: 'email must be an email address' }) message!: string;
}

export class ErrorBodyDto {
  @ApiProperty({ example: 401 }) statusCode!: number;
  @ApiProperty({ enum: Object.keys(ERROR_CODES), example: 'TOKEN_EXPIRED' }) code!: string;
  @ApiProperty({ example: 'Access token has expired' }) message!: string;
  @ApiProperty({ example: '5f0c6f5e-8d5b-4a39-9b43-0c1f7f4e2f11' }) requestId!: string;
  @ApiPropertyOptional({ type: [ErrorDetailDto] }) details?: ErrorDetailDto[];
}

/** Documents the error responses a route can give, grouped by status, each naming its codes. */
export function ApiErrors(...codes: ErrorCode[]): MethodDecorator & ClassDecorator {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set<ErrorCode>([...codes, 'INTERNAL_ERROR'])) {
    const status = ERROR_CODES[code][0];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return applyDecorators(
    ...[...byStatus].map(([status, statusCodes]) =>
      ApiResponse({ status, description: statusCodes.join(', '), type: ErrorBodyDto }),
    ),
  );
}

/** Errors any route with a JSON body can give before it runs. */
export const BODY_ERRORS: ErrorCode[] = [
  'VALIDATION_FAILED',
  'MALFORMED_JSON',
  'UNSUPPORTED_MEDIA_TYPE',
  'PAYLOAD_TOO_LARGE',
];
