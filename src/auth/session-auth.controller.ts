import { Body, Controller, Get, HttpCode, Inject, Post, Req, Res, UseGuards } from '@nestjs/common';
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
import { ApiErrors, LOGIN_ERRORS, setsCookies } from '../common/openapi';
import { CurrentUser, Principal } from '../common/principal';
import { Public } from '../common/public.decorator';
import { MfaService } from '../mfa/mfa.service';
import { SessionAuth } from '../session/session.guard';
import { SessionService } from '../session/session.service';
import { TrustedOriginGuard } from '../session/trusted-origin.guard';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { toPublicUser } from '../users/user.entity';
import { UsersService } from '../users/users.service';
import { VerifiedUser } from './authenticated-user.decorator';
import { setDeviceCookie } from './device-cookie';
import { DeviceTokens } from './device-tokens';
import { MfaChallengeDto } from './dto/mfa.dto';
import { LoginDto, SessionInfoResponseDto, SessionLoginResponseDto } from './dto/session.dto';
import { LocalAuthGuard } from './local-auth.guard';
import type { VerifiedLogin } from './login.service';

const SESSION_ERRORS = ['AUTHENTICATION_REQUIRED', 'SESSION_INVALID', 'SERVICE_UNAVAILABLE'] as const;

/** Cookie sessions for browsers. The session routes take the request only to hand it to express-session. */
@ApiTags('auth: session')
@Controller('api/auth/session')
export class SessionAuthController {
  constructor(
    private readonly sessions: SessionService,
    private readonly users: UsersService,
    private readonly audit: AuditService,
    private readonly devices: DeviceTokens,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly mfa: MfaService,
  ) {}

  @Post('login')
  @HttpCode(200)
  @Public()
  @UseGuards(TrustedOriginGuard, LocalAuthGuard)
  @ApiOperation({
    operationId: 'sessionLogin',
    summary: 'Log in with email and password; sets the session cookie',
  })
  @ApiExtraModels(SessionLoginResponseDto, MfaChallengeDto)
  @ApiOkResponse({
    description:
      'The session, or, for a user with a second factor, the challenge to answer at /api/auth/mfa/verify',
    headers: setsCookies('The session cookie (`sid`) and the device cookie `did`; none with the challenge'),
    schema: {
      oneOf: [{ $ref: getSchemaPath(SessionLoginResponseDto) }, { $ref: getSchemaPath(MfaChallengeDto) }],
    },
  })
  @ApiErrors(...LOGIN_ERRORS)
  async login(
    @Body() _body: LoginDto,
    @VerifiedUser() { user, checkedAt }: VerifiedLogin,
    @Client() client: ClientInfo,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ): Promise<SessionLoginResponseDto | MfaChallengeDto> {
    if (await this.mfa.hasFactor(user.id)) {
      return this.mfa.beginLogin(user, checkedAt, { method: 'session', refreshInCookie: false });
    }
    const started = await this.sessions.start(request, user, client, checkedAt);
    await this.audit.record('login.succeeded', user.id, client, { method: 'session' });
    setDeviceCookie(response, this.config, this.devices.issue(user));
    return {
      user: toPublicUser(user),
      csrfToken: started.csrfToken,
      expiresAt: started.expiresAt.toISOString(),
    };
  }

  @Get()
  @SessionAuth()
  @ApiOperation({ operationId: 'getSession', summary: 'The current session, its user and its CSRF token' })
  @ApiOkResponse({ type: SessionInfoResponseDto })
  @ApiErrors(...SESSION_ERRORS)
  async current(
    @CurrentUser() principal: Principal,
    @Req() request: Request,
  ): Promise<SessionInfoResponseDto> {
    const user = await this.users.state(principal.userId);
    if (!user) throw new AppError('SESSION_INVALID');
    const session = this.sessions.describeCurrent(request);
    return {
      user: toPublicUser(user),
      csrfToken: session.csrfToken,
      createdAt: session.createdAt.toISOString(),
      expiresAt: session.expiresAt.toISOString(),
      idleExpiresAt: session.idleExpiresAt.toISOString(),
    };
  }

  @Post('logout')
  @HttpCode(204)
  @SessionAuth()
  @ApiOperation({
    operationId: 'sessionLogout',
    summary: 'End the session: removed from the store, cookie cleared. Needs X-CSRF-Token',
  })
  @ApiNoContentResponse({ description: 'Logged out', headers: setsCookies('Clears the session cookie') })
  @ApiErrors(...SESSION_ERRORS, 'CSRF_FAILED')
  async logout(
    @CurrentUser() principal: Principal,
    @Client() client: ClientInfo,
    @Req() request: Request,
  ): Promise<void> {
    await this.sessions.end(request);
    await this.audit.record('logout', principal.userId, client, { method: 'session' });
  }
}
