import { Controller, Get, Inject } from '@nestjs/common';
import { Public } from '../common/public.decorator';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { AppError } from '../common/app-error';
import { ApiErrors } from '../common/openapi';
import { REDIS, RedisClient } from '../redis/redis.module';

class LiveDto {
  @ApiProperty({ example: 'ok' }) status!: string;
}

class ReadyDto {
  @ApiProperty({ example: 'ok' }) status!: string;
  @ApiProperty({ example: { database: { status: 'up' }, sessionStore: { status: 'up' } } })
  info!: Record<string, { status: string }>;
}

@ApiTags('operations')
@Controller('health')
@Public()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    @Inject(REDIS) private readonly redis: RedisClient | null,
  ) {}

  @Get('live')
  @ApiOperation({ operationId: 'live', summary: 'The process is running' })
  @ApiOkResponse({ type: LiveDto })
  live(): LiveDto {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOperation({ operationId: 'ready', summary: 'The database and the session store answer' })
  @ApiOkResponse({ type: ReadyDto })
  @ApiErrors('SERVICE_UNAVAILABLE')
  async ready(): Promise<ReadyDto> {
    try {
      const result = await this.health.check([
        () => this.database.pingCheck('database', { timeout: 1500 }),
        () => this.sessionStore(),
      ]);
      return { status: 'ok', info: (result.info ?? {}) as ReadyDto['info'] };
    } catch (error) {
      const failed = (error as { response?: { error?: Record<string, unknown> } }).response?.error ?? {};
      const down = Object.keys(failed);
      if (down.length === 0) throw error;
      throw new AppError(
        'SERVICE_UNAVAILABLE',
        `Not ready: ${down.join(' and ')} down`,
        down.map((field) => ({ field, message: 'down' })),
      );
    }
  }

  /** With Redis configured the session store is Redis; otherwise it is the database checked above. */
  private async sessionStore() {
    const indicator = this.indicators.check('sessionStore');
    if (!this.redis) return indicator.up({ backend: 'database' });
    try {
      await Promise.race([
        this.redis.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 1500).unref()),
      ]);
      return indicator.up({ backend: 'redis' });
    } catch {
      return indicator.down({ backend: 'redis' });
    }
  }
}
