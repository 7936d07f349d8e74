import { Global, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';

@Global()
@Module({
  controllers: [MetricsController],
  providers: [MetricsService],
  exports: [MetricsService],
})
export class MetricsModule implements NestModule {
  constructor(private readonly metrics: MetricsService) {}

  configure(consumer: MiddlewareConsumer): void {
    consumer
      .apply((req: Request, res: Response, next: NextFunction) => {
        const stop = this.metrics.httpDuration.startTimer({ method: req.method });
        this.metrics.httpInFlight.inc();
        res.once('close', () => this.metrics.httpInFlight.dec());
        res.once('finish', () => {
          const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
          stop({ route: `${req.baseUrl}${route}`, status: String(res.statusCode) });
        });
        next();
      })
      .forRoutes('*path');
  }
}
