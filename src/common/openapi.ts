import { applyDecorators } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiProperty,
  ApiPropertyOptional,
  ApiResponse,
  getSchemaPath,
  type HeadersObject,
} from '@nestjs/swagger';
import { ERROR_CODES, ErrorBody, ErrorCode } from './error-codes';

/** The OpenAPI security schemes, registered in src/openapi/api-document.ts. */
export const SECURITY = {
  /** The session cookie (`sid`, `__Host-sid` when secure). */
  session: 'session',
  /** An access token in `Authorization: Bearer`. */
  bearer: 'bearer',
  /** The `rt` refresh cookie (`__Secure-rt` when secure). */
  refreshCookie: 'refreshCookie',
  /** `X-CSRF-Token`, which every unsafe request authenticated by a cookie needs beside it. */
  csrf: 'csrf',
} as const;

/** Response headers described once in `components.headers` and referred to by name. */
export const RESPONSE_HEADERS = {
  'X-Request-Id': {
    description: "The request's id (the client's own when it sent a sane one); the server logs it too",
    schema: { type: 'string' },
  },
  'Retry-After': {
    description:
      'Seconds to wait before trying again: on every 429; on a 503 when password checks are queued past ' +
      'what the service can finish in a few seconds (not when a backing service is down)',
    schema: { type: 'integer', minimum: 1 },
  },
  'WWW-Authenticate': {
    description: 'The Bearer challenge (RFC 6750), on a 401 where an access token is accepted',
    schema: { type: 'string', example: 'Bearer realm="api", error="invalid_token"' },
  },
} satisfies HeadersObject;

export function headerRef(name: keyof typeof RESPONSE_HEADERS): { $ref: string } {
  return { $ref: `#/components/headers/${name}` };
}

/** A `Set-Cookie` response header saying which cookies the answer sets or clears. */
export function setsCookies(description: string): HeadersObject {
  return { 'Set-Cookie': { description, schema: { type: 'string' } } };
}

class ErrorDetailDto {
  @ApiProperty({ example: 'email' }) field!: string;
  @ApiProperty({ example: 'email must be an email address of at most 254 characters' }) message!: string;
}

export class ErrorBodyDto {
  @ApiProperty({ type: 'integer', example: 401 }) statusCode!: number;
  @ApiProperty({ enum: Object.keys(ERROR_CODES), example: 'TOKEN_EXPIRED' }) code!: string;
  @ApiProperty({ example: 'Access token has expired' }) message!: string;
  @ApiProperty({ example: '5f0c6f5e-8d5b-4a39-9b43-0c1f7f4e2f11' }) requestId!: string;
  @ApiPropertyOptional({ type: [ErrorDetailDto], description: 'Per field, with VALIDATION_FAILED' })
  details?: ErrorDetailDto[];
}

const EXAMPLE_REQUEST_ID = '5f0c6f5e-8d5b-4a39-9b43-0c1f7f4e2f11';

/** The body the global filter writes for `code`, as a client would see it. */
function exampleBody(code: ErrorCode): ErrorBody {
  const [statusCode, message] = ERROR_CODES[code];
  const body: ErrorBody = { statusCode, code, message, requestId: EXAMPLE_REQUEST_ID };
  if (code === 'VALIDATION_FAILED') {
    body.details = [{ field: 'email', message: 'email must be an email address of at most 254 characters' }];
  }
  return body;
}

/**
 * Documents the error responses a route can give, grouped by status, each naming its codes and carrying
 * an example body per code.
 */
export function ApiErrors(...codes: ErrorCode[]): MethodDecorator & ClassDecorator {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set<ErrorCode>([...codes, 'INTERNAL_ERROR'])) {
    const status = ERROR_CODES[code][0];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return applyDecorators(
    ApiExtraModels(ErrorBodyDto),
    ...[...byStatus].map(([status, statusCodes]) =>
      ApiResponse({
        status,
        description: statusCodes.join(', '),
        ...(status === 429 || status === 503 ? { headers: { 'Retry-After': headerRef('Retry-After') } } : {}),
        content: {
          'application/json': {
            schema: { $ref: getSchemaPath(ErrorBodyDto) },
            examples: Object.fromEntries(
              statusCodes.map((code) => [code, { summary: ERROR_CODES[code][1], value: exampleBody(code) }]),
            ),
          },
        },
      }),
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

/** Errors of a password login, by either method. */
export const LOGIN_ERRORS: ErrorCode[] = [
  ...BODY_ERRORS,
  'INVALID_CREDENTIALS',
  'EMAIL_NOT_VERIFIED',
  'CSRF_FAILED',
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
];
