import { Body, Controller, HttpCode, Inject, Post, Req } from '@nestjs/common';
import { ApiAcceptedResponse, ApiNoContentResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { Client, ClientInfo } from '../common/client-info';
import { ApiErrors, BODY_ERRORS } from '../common/openapi';
import { Public } from '../common/public.decorator';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { EmailVerificationService } from '../lifecycle/email-verification.service';
import { PasswordResetService } from '../lifecycle/password-reset.service';
import { presentedDeviceToken } from './device-cookie';
import { ForgotPasswordDto, ResetPasswordDto, VerifyEmailDto } from './dto/lifecycle.dto';

/** The public ends of mailed links: asking for a reset, and using reset, verification and change links. */
@ApiTags('auth: account lifecycle')
@Controller('api/auth')
@Public()
export class LifecycleController {
  constructor(
    private readonly resets: PasswordResetService,
    private readonly verification: EmailVerificationService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post('password/forgot')
  @HttpCode(202)
  @ApiOperation({
    operationId: 'forgotPassword',
    summary:
      'Ask for a password-reset mail; the same answer, in the same time, whether or not the account exists',
  })
  @ApiAcceptedResponse({ description: 'Accepted; a mail goes out only if an account has this address' })
  @ApiErrors(...BODY_ERRORS, 'RATE_LIMITED', 'SERVICE_UNAVAILABLE')
  async forgot(@Body() body: ForgotPasswordDto, @Client() client: ClientInfo): Promise<void> {
    await this.resets.request(body.email, client);
  }

  @Post('password/reset')
  @HttpCode(204)
  @ApiOperation({
    operationId: 'resetPassword',
    summary:
      'Set a new password with a mailed token; every session, refresh family and access token is revoked',
  })
  @ApiNoContentResponse({ description: 'Password set' })
  @ApiErrors(
    ...BODY_ERRORS,
    'LINK_INVALID',
    'MFA_REQUIRED',
    'MFA_INVALID',
    'RATE_LIMITED',
    'SERVICE_UNAVAILABLE',
  )
  async reset(
    @Body() body: ResetPasswordDto,
    @Client() client: ClientInfo,
    @Req() request: Request,
  ): Promise<void> {
    await this.resets.reset(body, client, presentedDeviceToken(request.headers.cookie, this.config));
  }

  @Post('email/verify')
  @HttpCode(204)
  @ApiOperation({
    operationId: 'verifyEmail',
    summary: 'Use a verification link, or an email-change link (which also verifies)',
  })
  @ApiNoContentResponse({ description: 'Verified, or the address changed' })
  @ApiErrors(...BODY_ERRORS, 'LINK_INVALID', 'EMAIL_TAKEN', 'SERVICE_UNAVAILABLE')
  async verify(@Body() body: VerifyEmailDto, @Client() client: ClientInfo): Promise<void> {
    await this.verification.confirm(body.token, client);
  }
}
