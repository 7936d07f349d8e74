import { Body, Controller, Delete, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AuditService } from '../audit/audit.service';
import { AppError } from '../common/app-error';
import { Client, ClientInfo } from '../common/client-info';
import { assertTrustedOrigin } from '../common/csrf';
import type { ErrorCode } from '../common/error-codes';
import { ApiErrors, BODY_ERRORS, setsCookies } from '../common/openapi';
import { CurrentUser, Principal } from '../common/principal';
import { Public } from '../common/public.decorator';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { MfaAccount, MfaService } from '../mfa/mfa.service';
import { SessionService } from '../session/session.service';
import { RefreshFamilies } from '../token/refresh-families';
import { toPublicUser } from '../users/user.entity';
import { UsersService } from '../users/users.service';
import { AccountService } from './account.service';
import { AnyAuth } from './any-auth.guard';
import { presentedDeviceToken, setDeviceCookie } from './device-cookie';
import { DeviceTokens } from './device-tokens';
import {
  MfaCodeDto,
  MfaDisableDto,
  MfaEnrolDto,
  MfaEnrolmentDto,
  MfaVerifyDto,
  RecoveryCodesDto,
} from './dto/mfa.dto';
import { SessionLoginResponseDto } from './dto/session.dto';
import { TOKEN_RESPONSE_SHAPES, TokenResponse } from './dto/token.dto';
import { TokenResponder } from './token-response';

/** The second half of a login that answered `mfaRequired`. */
@ApiTags('auth: second factor')
@Controller('api/auth/mfa')
export class MfaLoginController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly mfa: MfaService,
    private readonly sessions: SessionService,
    private readonly families: RefreshFamilies,
    private readonly responder: TokenResponder,
    private readonly audit: AuditService,
    private readonly devices: DeviceTokens,
  ) {}

  @Post('verify')
  @HttpCode(200)
  @Public()
  @ApiOperation({
    operationId: 'mfaVerify',
    summary: 'Complete a login with its mfaToken and a code; answers as that login would have',
    description:
      'A session login gets the session cookie and the session body; a token login gets the token response ' +
      '(the `rt` cookie and a csrfToken when it asked for refreshTokenInCookie). The mfaToken works once, ' +
      'for 5 minutes, and dies after 5 wrong codes; wrong codes count as login failures of the account (of ' +
      'the device, with a device token: the `did` cookie or `deviceToken`). Hands out the device token as a ' +
      'login does.',
  })
  @ApiExtraModels(SessionLoginResponseDto, ...TOKEN_RESPONSE_SHAPES)
  @ApiOkResponse({
    description: "The answer of the login that asked for the code: a session's, or a token response",
    headers: setsCookies(
      'The device cookie `did`, and the session cookie `sid` or (`refreshTokenInCookie`) the `rt` refresh cookie',
    ),
    schema: {
      oneOf: [SessionLoginResponseDto, ...TOKEN_RESPONSE_SHAPES].map((shape) => ({
        $ref: getSchemaPath(shape),
      })),
    },
  })
  @ApiErrors(...BODY_ERRORS, 'MFA_INVALID', 'CSRF_FAILED', 'RATE_LIMITED', 'SERVICE_UNAVAILABLE')
  async verify(
    @Body() body: MfaVerifyDto,
    @Client() client: ClientInfo,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ): Promise<SessionLoginResponseDto | TokenResponse> {
    const presented = presentedDeviceToken(request.headers.cookie, this.config, body.deviceToken);
    const { user, login, checkedAt } = await this.mfa.completeLogin(
      body.mfaToken,
      body.code,
      client,
      presented,
      (pending) => {
        // What sets a cookie refuses cross-site callers, as the login that started it did (login CSRF).
        if (pending.method === 'session' || pending.refreshInCookie)
          assertTrustedOrigin(request, this.config);
      },
    );
    const deviceToken = this.devices.issue(user);
    if (login.method === 'token') {
      const grant = await this.families.start(user, client, login.refreshInCookie, checkedAt, true);
      setDeviceCookie(response, this.config, deviceToken);
      return { ...this.responder.reply(grant, login.refreshInCookie, response), deviceToken };
    }
    const started = await this.sessions.start(request, user, client, checkedAt, { mfa: true });
    await this.audit.record('login.succeeded', user.id, client, { method: 'session', mfa: true });
    setDeviceCookie(response, this.config, deviceToken);
    return {
      user: toPublicUser(user),
      csrfToken: started.csrfToken,
      expiresAt: started.expiresAt.toISOString(),
    };
  }
}

const UNSAFE_ERRORS: ErrorCode[] = [
  ...BODY_ERRORS,
  'AUTHENTICATION_REQUIRED',
  'SESSION_INVALID',
  'TOKEN_EXPIRED',
  'TOKEN_INVALID',
  'TOKEN_REVOKED',
  'CSRF_FAILED',
  'SERVICE_UNAVAILABLE',
];

/** The caller's own second factor, by either method. */
@ApiTags('me: second factor')
@Controller('api/me/mfa')
@AnyAuth()
export class MfaController {
  constructor(
    private readonly mfa: MfaService,
    private readonly users: UsersService,
    private readonly account: AccountService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post('totp')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'enrolTotp',
    summary: 'Start a TOTP enrolment (replacing a pending one); it stays pending until confirmed',
  })
  @ApiOkResponse({ type: MfaEnrolmentDto })
  @ApiErrors(...UNSAFE_ERRORS, 'RATE_LIMITED')
  async enrol(
    @CurrentUser() principal: Principal,
    @Body() body: MfaEnrolDto,
    @Client() client: ClientInfo,
    @Req() request: Request,
  ): Promise<MfaEnrolmentDto> {
    const user = await this.caller(principal);
    const deviceToken = presentedDeviceToken(request.headers.cookie, this.config);
    await this.account.confirmPassword(user, body.password, 'password', client, deviceToken);
    return this.mfa.enrol(user);
  }

  @Post('totp/confirm')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'confirmTotp',
    summary: 'Activate the pending enrolment with a code from it; returns the recovery codes',
  })
  @ApiOkResponse({ type: RecoveryCodesDto })
  @ApiErrors(...UNSAFE_ERRORS, 'MFA_INVALID')
  async confirm(
    @CurrentUser() principal: Principal,
    @Body() body: MfaCodeDto,
    @Client() client: ClientInfo,
  ): Promise<RecoveryCodesDto> {
    return { recoveryCodes: await this.mfa.confirm(await this.caller(principal), body.code, client) };
  }

  @Delete('totp')
  @HttpCode(204)
  @ApiOperation({ operationId: 'disableTotp', summary: 'Remove the second factor (password and a code)' })
  @ApiNoContentResponse({ description: 'Removed' })
  @ApiErrors(...UNSAFE_ERRORS, 'MFA_REQUIRED', 'MFA_INVALID', 'RATE_LIMITED')
  async disable(
    @CurrentUser() principal: Principal,
    @Body() body: MfaDisableDto,
    @Client() client: ClientInfo,
    @Req() request: Request,
  ): Promise<void> {
    const user = await this.caller(principal);
    const deviceToken = presentedDeviceToken(request.headers.cookie, this.config);
    await this.account.confirmPassword(user, body.password, 'password', client, deviceToken);
    await this.mfa.disable(user, body.code, client, deviceToken);
  }

  @Post('recovery-codes')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'regenerateRecoveryCodes',
    summary: 'New recovery codes for a code; the previous ones stop working',
  })
  @ApiOkResponse({ type: RecoveryCodesDto })
  @ApiErrors(...UNSAFE_ERRORS, 'MFA_INVALID', 'RATE_LIMITED')
  async regenerate(
    @CurrentUser() principal: Principal,
    @Body() body: MfaCodeDto,
    @Client() client: ClientInfo,
  ): Promise<RecoveryCodesDto> {
    const user = await this.caller(principal);
    return { recoveryCodes: await this.mfa.regenerateRecoveryCodes(user, body.code, client) };
  }

  private async caller(principal: Principal) {
    const user = await this.users.findById(principal.userId);
    // Deleted between the guard and here.
    if (!user) throw new AppError(principal.method === 'session' ? 'SESSION_INVALID' : 'TOKEN_REVOKED');
    return user satisfies MfaAccount;
  }
}
