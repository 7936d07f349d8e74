// The framework's ceiling for `npm run bench`: a bare NestJS application on the Express adapter with one
// route answering what GET /health/live answers, no middleware, no logging. Started by bench/run.mjs on the
// service's core; PORT says where to listen.
import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

class HealthController {
  live() {
    return { status: 'ok' };
  }
}
Get('live')(
  HealthController.prototype,
  'live',
  Object.getOwnPropertyDescriptor(HealthController.prototype, 'live'),
);
Controller('health')(HealthController);

class BareModule {}
Module({ controllers: [HealthController] })(BareModule);

const app = await NestFactory.create(BareModule, { logger: false });
await app.listen(Number(process.env.PORT), '127.0.0.1');
