import { Body, Controller, HttpCode, Inject, Post, Req, Res, UseGuards } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Client, ClientInfo } from '../common/client-info';
import { assertTrustedOrigin, CSRF_HEADER } from '../common/csrf';
import { ApiErrors, BODY_ERRORS } from '../common/openapi';
import { CurrentUser, Principal } from '../common/principal';
import { Public } from '../common/public.decorator';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { BearerAuth } from '../token/jwt.guard';
import { Presentation, RefreshFamilies, TokenGrant } from '../token/refresh-families.service';
import { MfaService } from '../mfa/mfa.service';
import { User } from '../users/user.entity';
import { MfaChallengeDto } from './dto/mfa.dto';
import { RefreshTokenDto, TokenLoginDto, TokenResponseDto } from './dto/token.dto';
import { LocalAuthGuard } from './local-auth.guard';
import { TokenRefreshService } from './token-refresh.service';
import { TokenResponder } from './token-response';

@ApiTags('auth')
@Controller('api/auth/token')
export class TokenAuthController {
  constructor(
    private readonly families: RefreshFamilies,
    private readonly refreshes: TokenRefreshService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly responder: TokenResponder,
    private readonly mfa: MfaService,
  ) {}

  @Post('login')
  @HttpCode(200)
  @Public()
  @UseGuards(LocalAuthGuard)
  @ApiOperation({ summary: 'Log in for an access token and a refresh token' })
  @ApiExtraModels(TokenResponseDto, MfaChallengeDto)
  @ApiOkResponse({
    description:
      'The tokens, or, for a user with a second factor, the challenge to answer at /api/auth/mfa/verify',
    schema: { oneOf: [{ $ref: getSchemaPath(TokenResponseDto) }, { $ref: getSchemaPath(MfaChallengeDto) }] },
  })
  @ApiErrors(...BODY_ERRORS, 'INVALID_CREDENTIALS', 'CSRF_FAILED', 'RATE_LIMITED', 'SERVICE_UNAVAILABLE')
  async login(
    @Body() body: TokenLoginDto,
    @Req() request: Request & { user?: User },
    @Res({ passthrough: true }) response: Response,
    @Client() client: ClientInfo,
  ): Promise<TokenResponseDto | MfaChallengeDto> {
    const viaCookie = body.refreshTokenInCookie === true;
    // A login that sets a cookie is a cookie-borne credential: refuse cross-site callers (login CSRF).
    if (viaCookie) assertTrustedOrigin(request, this.config);
    if (await this.mfa.hasFactor(request.user!.id)) {
      return this.mfa.beginLogin(request.user!, { method: 'token', refreshInCookie: viaCookie });
    }
    const grant = await this.families.start(request.user!, client, viaCookie);
    return this.reply(grant, viaCookie, response);
  }

  @Post('refresh')
  @HttpCode(200)
  @Public()
  @ApiOperation({ summary: 'Rotate a refresh token (body or `rt` cookie) for new tokens' })
  @ApiOkResponse({ type: TokenResponseDto })
  @ApiErrors(
    ...BODY_ERRORS,
    'REFRESH_TOKEN_INVALID',
    'REFRESH_TOKEN_REUSED',
    'CSRF_FAILED',
    'RATE_LIMITED',
    'SERVICE_UNAVAILABLE',
  )
  async refresh(
    @Body() body: RefreshTokenDto,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
    @Client() client: ClientInfo,
  ): Promise<TokenResponseDto> {
    const grant = await this.refreshes.refresh(this.presentation(body, request), client);
    return this.reply(grant, grant.csrfToken !== undefined, response);
  }

  @Post('logout')
  @HttpCode(204)
  @BearerAuth()
  @ApiOperation({ summary: 'Revoke the refresh family and the access token' })
  @ApiNoContentResponse({ description: 'Logged out' })
  @ApiErrors(
    ...BODY_ERRORS,
    'AUTHENTICATION_REQUIRED',
    'TOKEN_EXPIRED',
    'TOKEN_INVALID',
    'TOKEN_REVOKED',
    'CSRF_FAILED',
    'SERVICE_UNAVAILABLE',
  )
  async logout(
    @Body() body: RefreshTokenDto,
    @CurrentUser() principal: Principal,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
    @Client() client: ClientInfo,
  ): Promise<void> {
    const presentation = this.presentation(body, request);
    await this.families.logout(principal.userId, principal.sessionId, presentation, client);
    if (presentation?.viaCookie) this.responder.clearCookie(response);
  }

  /** The refresh token from the body, else from the cookie, which then needs the CSRF checks. */
  private presentation(body: RefreshTokenDto, request: Request): Presentation | undefined {
    if (body.refreshToken !== undefined) return { refreshToken: body.refreshToken, viaCookie: false };
    const fromCookie = readCookie(request.headers.cookie, this.responder.cookieName);
    if (fromCookie === undefined) return undefined;
    assertTrustedOrigin(request, this.config);
    const csrfHeader = request.headers[CSRF_HEADER];
    return {
      refreshToken: fromCookie,
      viaCookie: true,
      csrfHeader: typeof csrfHeader === 'string' ? csrfHeader : undefined,
    };
  }

  private reply(grant: TokenGrant, viaCookie: boolean, response: Response): TokenResponseDto {
    return this.responder.reply(grant, viaCookie, response);
  }
}

/** Express has no cookie parser here; the one cookie this controller reads needs only a split. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const pair of header.split(';')) {
    const index = pair.indexOf('=');
    if (index > 0 && pair.slice(0, index).trim() === name) {
      const value = pair.slice(index + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}
