import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Client, ClientInfo } from '../common/client-info';
import { ApiErrors, BODY_ERRORS } from '../common/openapi';
import { Public } from '../common/public.decorator';
import { toPublicUser } from '../users/user.entity';
import { RegisterDto } from './dto/register.dto';
import { UserEnvelopeDto } from './dto/user.response';
import { RegistrationService } from './registration.service';

@ApiTags('auth')
@Controller('api/auth')
@Public()
export class RegisterController {
  constructor(private readonly registration: RegistrationService) {}

  @Post('register')
  @HttpCode(201)
  @ApiOperation({ operationId: 'register', summary: 'Create an account (role user)' })
  @ApiCreatedResponse({ type: UserEnvelopeDto })
  @ApiErrors(...BODY_ERRORS, 'EMAIL_TAKEN', 'RATE_LIMITED', 'SERVICE_UNAVAILABLE')
  async register(@Body() body: RegisterDto, @Client() client: ClientInfo): Promise<UserEnvelopeDto> {
    const user = await this.registration.register(body, client);
    return { user: toPublicUser(user) };
  }
}
