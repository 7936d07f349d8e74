import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The service's Prometheus registry: process defaults, HTTP latency, authentication outcomes, revocation cache use. */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  /** What a draining instance still has to finish: SIGTERM waits for it to reach zero. */
  readonly httpInFlight = new Gauge({
    name: 'http_requests_in_flight',
    help: 'HTTP requests received and not yet answered',
    registers: [this.registry],
  });

  readonly authEvents = new Counter({
    name: 'auth_events_total',
    help: 'Authentication events by type (the audit types)',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });

  readonly revocationLookups = new Counter({
    name: 'revocation_cache_lookups_total',
    help: 'Revocation state lookups: hit (memory), miss (read and kept), bypass (cache distrusted, read)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly mailQueued = new Counter({
    name: 'mail_queued_total',
    help: 'Mails written to the outbox by committed transactions, by template',
    labelNames: ['template'] as const,
    registers: [this.registry],
  });

  readonly mailSent = new Counter({
    name: 'mail_sent_total',
    help: 'Mails the SMTP server (or the .eml file) accepted, by template',
    labelNames: ['template'] as const,
    registers: [this.registry],
  });

  readonly mailFailures = new Counter({
    name: 'mail_send_failures_total',
    help: 'Send attempts that failed and will be retried (or were the last), by template',
    labelNames: ['template'] as const,
    registers: [this.registry],
  });

  readonly mailAbandoned = new Counter({
    name: 'mail_abandoned_total',
    help: 'Mails given up after MAIL_RETRY_FOR of failed attempts, by template',
    labelNames: ['template'] as const,
    registers: [this.registry],
  });

  readonly mailWaiting = new Gauge({
    name: 'mail_outbox_waiting',
    help: 'Mails in the outbox not yet sent nor given up, as of the last poll of this instance',
    registers: [this.registry],
  });

  readonly mailOldestWaiting = new Gauge({
    name: 'mail_outbox_oldest_waiting_seconds',
    help: 'Age of the oldest mail not yet sent, as of the last poll of this instance (0 when none)',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
