import { Body, Controller, Get, HttpCode, Inject, Post, Req, Res, UseGuards } from '@nestjs/common';
import {
  ApiCookieAuth,
  ApiExtraModels,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiSecurity,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AppError } from '../common/app-error';
import { Client, ClientInfo } from '../common/client-info';
import { readCookie } from '../common/cookies';
import { assertTrustedOrigin, CSRF_HEADER } from '../common/csrf';
import { ApiErrors, BODY_ERRORS, LOGIN_ERRORS, SECURITY, setsCookies } from '../common/openapi';
import { CurrentUser, Principal } from '../common/principal';
import { Public } from '../common/public.decorator';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { BearerAuth } from '../token/jwt.guard';
import { RefreshCsrf } from '../token/refresh-csrf';
import { MfaService } from '../mfa/mfa.service';
import { Presentation, RefreshFamilies } from '../token/refresh-families';
import { MfaChallengeDto } from './dto/mfa.dto';
import {
  RefreshCsrfResponseDto,
  RefreshTokenDto,
  TOKEN_RESPONSE_SHAPES,
  TokenLoginDto,
  TokenResponse,
} from './dto/token.dto';
import { setDeviceCookie } from './device-cookie';
import { DeviceTokens } from './device-tokens';
import { LocalAuthGuard } from './local-auth.guard';
import type { VerifiedLogin } from './login.service';
import { TokenRefreshService } from './token-refresh.service';
import { TokenResponder } from './token-response';

const TOKEN_RESPONSE = TOKEN_RESPONSE_SHAPES.map((shape) => ({ $ref: getSchemaPath(shape) }));

@ApiTags('auth')
@Controller('api/auth/token')
export class TokenAuthController {
  constructor(
    private readonly families: RefreshFamilies,
    private readonly refreshes: TokenRefreshService,
    private readonly refreshCsrf: RefreshCsrf,
    private readonly devices: DeviceTokens,
    private readonly mfa: MfaService,
    private readonly responder: TokenResponder,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post('login')
  @HttpCode(200)
  @Public()
  @UseGuards(LocalAuthGuard)
  @ApiOperation({ operationId: 'tokenLogin', summary: 'Log in for an access token and a refresh token' })
  @ApiExtraModels(...TOKEN_RESPONSE_SHAPES, MfaChallengeDto)
  @ApiOkResponse({
    description:
      'The tokens, the refresh token in the body or (`refreshTokenInCookie`) in the `rt` cookie; or, for ' +
      'a user with a second factor, the challenge to answer at /api/auth/mfa/verify',
    headers: setsCookies(
      'The device cookie `did`, and the `rt` refresh cookie with `refreshTokenInCookie`; none with the challenge',
    ),
    schema: { oneOf: [...TOKEN_RESPONSE, { $ref: getSchemaPath(MfaChallengeDto) }] },
  })
  @ApiErrors(...LOGIN_ERRORS)
  async login(
    @Body() body: TokenLoginDto,
    @Req() request: Request & { user?: VerifiedLogin },
    @Res({ passthrough: true }) response: Response,
    @Client() client: ClientInfo,
  ): Promise<TokenResponse | MfaChallengeDto> {
    const viaCookie = body.refreshTokenInCookie === true;
    // A login that sets a cookie is a cookie-borne credential: refuse cross-site callers (login CSRF).
    if (viaCookie) assertTrustedOrigin(request, this.config);
    const { user, checkedAt } = request.user!;
    if (await this.mfa.hasFactor(user.id)) {
      return this.mfa.beginLogin(user, checkedAt, { method: 'token', refreshInCookie: viaCookie });
    }
    const grant = await this.families.start(user, client, viaCookie, checkedAt);
    const deviceToken = this.devices.issue(user);
    setDeviceCookie(response, this.config, deviceToken);
    return { ...this.responder.reply(grant, viaCookie, response), deviceToken };
  }

  @Post('refresh')
  @HttpCode(200)
  @Public()
  @ApiCookieAuth(SECURITY.refreshCookie)
  @ApiSecurity({})
  @ApiOperation({
    operationId: 'tokenRefresh',
    summary: 'Rotate a refresh token (body or `rt` cookie) for new tokens',
    description:
      'The refresh token in the body needs nothing else; the `rt` cookie needs X-CSRF-Token, and the ' +
      'answer then keeps the same csrfToken.',
  })
  @ApiExtraModels(...TOKEN_RESPONSE_SHAPES)
  @ApiOkResponse({
    description: 'New tokens, in the shape the family was started with',
    headers: setsCookies('The rotated `rt` refresh cookie, when the refresh token came in it'),
    schema: { oneOf: TOKEN_RESPONSE },
  })
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
  ): Promise<TokenResponse> {
    const grant = await this.refreshes.refresh(this.presentation(body, request), client);
    return this.responder.reply(grant, grant.csrfToken !== undefined, response);
  }

  @Get('csrf')
  @Public()
  @ApiCookieAuth(SECURITY.refreshCookie)
  @ApiOperation({
    operationId: 'getRefreshCsrf',
    summary: 'The CSRF token bound to the `rt` refresh cookie, for a page that reloaded and lost it',
  })
  @ApiOkResponse({ type: RefreshCsrfResponseDto })
  @ApiErrors('REFRESH_TOKEN_INVALID', 'CSRF_FAILED', 'SERVICE_UNAVAILABLE')
  async csrf(@Req() request: Request): Promise<RefreshCsrfResponseDto> {
    const refreshToken = readCookie(request.headers.cookie, this.responder.cookieName);
    if (refreshToken === undefined) throw new AppError('REFRESH_TOKEN_INVALID');
    assertTrustedOrigin(request, this.config);
    return { csrfToken: await this.refreshCsrf.forRefreshToken(refreshToken) };
  }

  @Post('logout')
  @HttpCode(204)
  @ApiSecurity({ [SECURITY.bearer]: [], [SECURITY.refreshCookie]: [] })
  @BearerAuth()
  @ApiOperation({
    operationId: 'tokenLogout',
    summary: 'Revoke the refresh family and the access token',
    description:
      'The refresh token comes in the body, or in the `rt` cookie (with X-CSRF-Token); with neither, the ' +
      "access token's own family is ended.",
  })
  @ApiNoContentResponse({
    description: 'Logged out',
    headers: setsCookies('Clears the `rt` refresh cookie, when the refresh token came in it'),
  })
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
    // `{ "refreshToken": null }` is the same as no refresh token: the cookie, if any, is read.
    if (typeof body.refreshToken === 'string') return { refreshToken: body.refreshToken, viaCookie: false };
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
}
