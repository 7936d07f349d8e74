import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AuditService } from '../audit/audit.service';
import { Client, ClientInfo } from '../common/client-info';
import type { ErrorCode } from '../common/error-codes';
import { ApiErrors, BODY_ERRORS } from '../common/openapi';
import { CurrentUser, Principal } from '../common/principal';
import { MfaService } from '../mfa/mfa.service';
import { toPublicUser } from '../users/user.entity';
import { UsersService } from '../users/users.service';
import { AccountService } from './account.service';
import {
  AuditPageDto,
  AuditQuery,
  RoleChangeDto,
  UserIdParams,
  UserListQuery,
  UserPageDto,
} from './dto/admin.dto';
import { UserEnvelopeDto } from './dto/user.response';
import { AdminAuth } from './roles.guard';
import { SignIns } from './sign-ins';

const ADMIN_ERRORS: ErrorCode[] = [
  'AUTHENTICATION_REQUIRED',
  'SESSION_INVALID',
  'TOKEN_EXPIRED',
  'TOKEN_INVALID',
  'TOKEN_REVOKED',
  'FORBIDDEN',
  'VALIDATION_FAILED',
  'SERVICE_UNAVAILABLE',
];

@ApiTags('admin')
@Controller('api/admin')
@AdminAuth()
export class AdminController {
  constructor(
    private readonly users: UsersService,
    private readonly account: AccountService,
    private readonly signIns: SignIns,
    private readonly audit: AuditService,
    private readonly mfa: MfaService,
  ) {}

  @Get('users')
  @ApiOperation({
    operationId: 'listUsers',
    summary: 'Users, oldest first, optionally those whose email contains a string',
  })
  @ApiOkResponse({ type: UserPageDto })
  @ApiErrors(...ADMIN_ERRORS)
  async listUsers(@Query() query: UserListQuery): Promise<UserPageDto> {
    const { items, total } = await this.users.list(query.page, query.limit, query.email);
    return { items: items.map(toPublicUser), total, page: query.page, limit: query.limit };
  }

  @Patch('users/:id')
  @ApiOperation({
    operationId: 'updateUser',
    summary: "Change a user's role; applies on that user's next request",
  })
  @ApiOkResponse({ type: UserEnvelopeDto })
  @ApiErrors(...ADMIN_ERRORS, ...BODY_ERRORS, 'CSRF_FAILED', 'NOT_FOUND')
  async changeRole(
    @CurrentUser() admin: Principal,
    @Param() params: UserIdParams,
    @Body() body: RoleChangeDto,
    @Client() client: ClientInfo,
  ): Promise<UserEnvelopeDto> {
    return { user: toPublicUser(await this.account.changeRole(admin, params.id, body.role, client)) };
  }

  @Post('users/:id/revoke')
  @HttpCode(204)
  @ApiOperation({
    operationId: 'revokeUser',
    summary: 'Log the user out everywhere: every session, family and access token',
  })
  @ApiNoContentResponse({ description: 'Revoked' })
  @ApiErrors(...ADMIN_ERRORS, 'CSRF_FAILED', 'NOT_FOUND')
  async revoke(
    @CurrentUser() admin: Principal,
    @Param() params: UserIdParams,
    @Client() client: ClientInfo,
  ): Promise<void> {
    await this.signIns.revokeAsAdmin(admin, params.id, client);
  }

  @Delete('users/:id/mfa')
  @HttpCode(204)
  @ApiOperation({
    operationId: 'removeUserMfa',
    summary: "Remove a user's second factor (lost device and recovery codes) and revoke every sign-in",
  })
  @ApiNoContentResponse({ description: 'Removed, and the user signed out everywhere' })
  @ApiErrors(...ADMIN_ERRORS, 'CSRF_FAILED', 'NOT_FOUND')
  async removeMfa(
    @CurrentUser() admin: Principal,
    @Param() params: UserIdParams,
    @Client() client: ClientInfo,
  ): Promise<void> {
    await this.mfa.removeByAdmin(admin.userId, params.id, client);
    await this.signIns.revokeAsAdmin(admin, params.id, client);
  }

  @Get('audit')
  @ApiOperation({ operationId: 'listAudit', summary: 'The audit trail, newest first' })
  @ApiOkResponse({ type: AuditPageDto })
  @ApiErrors(...ADMIN_ERRORS)
  async auditTrail(@Query() query: AuditQuery): Promise<AuditPageDto> {
    const { items, total } = await this.audit.list(query);
    return {
      items: items.map((event) => ({
        id: event.id,
        type: event.type,
        userId: event.userId,
        ip: event.ip,
        userAgent: event.userAgent,
        at: event.at.toISOString(),
        detail: event.detail,
      })),
      total,
      page: query.page,
      limit: query.limit,
    };
  }
}
