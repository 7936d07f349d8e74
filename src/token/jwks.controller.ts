import { Controller, Get, Header } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/openapi';
import { Public } from '../common/public.decorator';
import { SigningKeys } from './signing-keys';

export class JwksDto {
  @ApiProperty({
    description: 'Public JWKs (kid, alg, use: sig); empty with HS256, whose key is never published',
    type: 'array',
    items: { type: 'object', additionalProperties: true },
  })
  keys!: object[];
}

@ApiTags('tokens')
@Controller('.well-known')
@Public()
export class JwksController {
  constructor(private readonly keys: SigningKeys) {}

  @Get('jwks.json')
  @Header('Cache-Control', 'public, max-age=300')
  @ApiOperation({
    operationId: 'getJwks',
    summary: 'The public keys that verify access tokens: the current and still-live retired ones',
  })
  @ApiOkResponse({ type: JwksDto })
  @ApiErrors()
  jwks(): JwksDto {
    return { keys: this.keys.jwks() };
  }
}
