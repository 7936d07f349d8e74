import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AppError } from '../common/app-error';
import { Client, ClientInfo } from '../common/client-info';
import { ApiErrors, BODY_ERRORS, setsCookies } from '../common/openapi';
import { CurrentUser, Principal } from '../common/principal';
import type { ErrorCode } from '../common/error-codes';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { toPublicUser } from '../users/user.entity';
import { UsersService } from '../users/users.service';
import { AccountService } from './account.service';
import { EmailVerificationService } from '../lifecycle/email-verification.service';
import { AnyAuth } from './any-auth.guard';
import { presentedDeviceToken } from './device-cookie';
import { ChangeEmailDto } from './dto/lifecycle.dto';
import { ChangePasswordDto, DeleteAccountDto, MeResponseDto, SignInDto, SignInIdParams } from './dto/me.dto';
import { SignIns } from './sign-ins';

const AUTH_ERRORS: ErrorCode[] = [
  'AUTHENTICATION_REQUIRED',
  'SESSION_INVALID',
  'TOKEN_EXPIRED',
  'TOKEN_INVALID',
  'TOKEN_REVOKED',
  'SERVICE_UNAVAILABLE',
];
/** Unsafe routes: a cookie-authenticated call also needs X-CSRF-Token and a trusted origin. */
const UNSAFE_ERRORS: ErrorCode[] = [...AUTH_ERRORS, 'CSRF_FAILED'];

/**
 * The caller's own account, by either method. The controllers take the request only to hand it to
 * the session service, which must end or re-key the request's own session.
 */
@ApiTags('me')
@Controller('api/me')
@AnyAuth()
export class MeController {
  constructor(
    private readonly users: UsersService,
    private readonly signIns: SignIns,
    private readonly account: AccountService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly verification: EmailVerificationService,
  ) {}

  @Get()
  @ApiOperation({ operationId: 'getMe', summary: 'Who is calling, and with what' })
  @ApiOkResponse({ type: MeResponseDto })
  @ApiErrors(...AUTH_ERRORS)
  async me(@CurrentUser() principal: Principal): Promise<MeResponseDto> {
    // The state the guard just checked, from the revocation cache: no database read while it is warm.
    const user = await this.users.state(principal.userId);
    if (!user) throw new AppError(principal.method === 'session' ? 'SESSION_INVALID' : 'TOKEN_REVOKED');
    return {
      user: toPublicUser(user),
      auth: {
        method: principal.method,
        sessionId: principal.sessionId,
        expiresAt: principal.expiresAt.toISOString(),
        mfa: principal.mfa,
      },
    };
  }

  @Get('sessions')
  @ApiOperation({
    operationId: 'listSignIns',
    summary: 'Every cookie session and token family the user is signed in with',
  })
  @ApiOkResponse({ type: [SignInDto] })
  @ApiErrors(...AUTH_ERRORS)
  async sessions(@CurrentUser() principal: Principal): Promise<SignInDto[]> {
    return (await this.signIns.list(principal)).map((signIn) => ({
      ...signIn,
      createdAt: signIn.createdAt.toISOString(),
      lastSeenAt: signIn.lastSeenAt.toISOString(),
      expiresAt: signIn.expiresAt.toISOString(),
    }));
  }

  @Delete('sessions/:id')
  @HttpCode(204)
  @ApiOperation({
    operationId: 'revokeSignIn',
    summary: 'Revoke one session or token family (and its access tokens)',
  })
  @ApiNoContentResponse({
    description: 'Revoked',
    headers: setsCookies('Clears the session cookie, when the call was made with it'),
  })
  @ApiErrors(...UNSAFE_ERRORS, 'VALIDATION_FAILED', 'NOT_FOUND')
  async revoke(
    @CurrentUser() principal: Principal,
    @Param() params: SignInIdParams,
    @Client() client: ClientInfo,
    @Req() request: Request,
  ): Promise<void> {
    await this.signIns.revoke(principal, params.id, client, request);
  }

  @Post('logout-all')
  @HttpCode(204)
  @ApiOperation({
    operationId: 'logoutAll',
    summary: 'Revoke every session, family and access token of the user',
  })
  @ApiNoContentResponse({
    description: 'Everything revoked',
    headers: setsCookies('Clears the session cookie, when the call was made with it'),
  })
  @ApiErrors(...UNSAFE_ERRORS)
  async logoutAll(
    @CurrentUser() principal: Principal,
    @Client() client: ClientInfo,
    @Req() request: Request,
  ): Promise<void> {
    await this.signIns.revokeAllOf(principal, client, request);
  }

  @Post('password')
  @HttpCode(204)
  @ApiOperation({
    operationId: 'changePassword',
    summary: 'Change the password; every other sign-in is revoked, a cookie session gets a new id',
  })
  @ApiNoContentResponse({
    description: 'Changed',
    headers: setsCookies('The session cookie with its new id, when the call was made with it'),
  })
  @ApiErrors(...UNSAFE_ERRORS, ...BODY_ERRORS, 'MFA_REQUIRED', 'MFA_INVALID', 'RATE_LIMITED')
  async changePassword(
    @CurrentUser() principal: Principal,
    @Body() body: ChangePasswordDto,
    @Client() client: ClientInfo,
    @Req() request: Request,
  ): Promise<void> {
    const deviceToken = presentedDeviceToken(request.headers.cookie, this.config);
    await this.account.changePassword(principal, body, client, request, deviceToken);
  }

  @Delete()
  @HttpCode(204)
  @ApiOperation({
    operationId: 'deleteAccount',
    summary: 'Delete the account; its sessions and tokens stop working at once',
  })
  @ApiNoContentResponse({
    description: 'Deleted',
    headers: setsCookies('Clears the session cookie, when the call was made with it'),
  })
  @ApiErrors(...UNSAFE_ERRORS, ...BODY_ERRORS, 'MFA_REQUIRED', 'MFA_INVALID', 'RATE_LIMITED')
  async deleteAccount(
    @CurrentUser() principal: Principal,
    @Body() body: DeleteAccountDto,
    @Client() client: ClientInfo,
    @Req() request: Request,
  ): Promise<void> {
    const deviceToken = presentedDeviceToken(request.headers.cookie, this.config);
    await this.account.deleteAccount(principal, body.password, client, request, body.code, deviceToken);
  }

  @Post('email/verification')
  @HttpCode(202)
  @ApiOperation({
    operationId: 'requestEmailVerification',
    summary: 'Send a new verification mail (the previous link stops working)',
  })
  @ApiAcceptedResponse({ description: 'Verification mail on its way' })
  @ApiNoContentResponse({ description: 'Already verified: nothing sent' })
  @ApiErrors(...UNSAFE_ERRORS, 'RATE_LIMITED')
  async resendVerification(
    @CurrentUser() principal: Principal,
    @Client() client: ClientInfo,
    @Res({ passthrough: true }) response: Response,
  ): Promise<void> {
    const sent = await this.verification.resend(principal.userId, client);
    if (!sent) response.status(204);
  }

  @Post('email')
  @HttpCode(202)
  @ApiOperation({
    operationId: 'changeEmail',
    summary:
      'Ask to change the email address: a confirmation link to the new address, a notice to the old one; ' +
      'the change happens when the link is used',
  })
  @ApiAcceptedResponse({ description: 'Confirmation mail on its way' })
  @ApiErrors(...UNSAFE_ERRORS, ...BODY_ERRORS, 'EMAIL_TAKEN', 'MFA_REQUIRED', 'MFA_INVALID', 'RATE_LIMITED')
  async changeEmail(
    @CurrentUser() principal: Principal,
    @Body() body: ChangeEmailDto,
    @Client() client: ClientInfo,
    @Req() request: Request,
  ): Promise<void> {
    const deviceToken = presentedDeviceToken(request.headers.cookie, this.config);
    await this.account.changeEmail(principal, body, client, deviceToken);
  }
}
