import { Controller, Get, Header, Inject } from '@nestjs/common';
import { Public } from '../common/public.decorator';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AppError } from '../common/app-error';
import { ApiErrors } from '../common/openapi';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { MetricsService } from './metrics.service';

@ApiTags('operations')
@Controller('metrics')
@Public()
export class MetricsController {
  constructor(
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @ApiOperation({
    operationId: 'metrics',
    summary: 'Prometheus metrics (METRICS_ENABLED=false turns the route off)',
  })
  @ApiOkResponse({
    description: 'Prometheus text format',
    content: { 'text/plain': { schema: { type: 'string' } } },
  })
  @ApiErrors('NOT_FOUND')
  async scrape(): Promise<string> {
    if (!this.config.http.metricsEnabled) throw new AppError('NOT_FOUND');
    return this.metrics.registry.metrics();
  }
}
