import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type {
  DataSource,
  EntityManager,
  EntitySubscriberInterface,
  QueryRunner,
  TransactionCommitEvent,
  TransactionRollbackEvent,
} from 'typeorm';
import { MetricsService } from '../metrics/metrics.service';
import type { MailTemplate, MailVariables } from './mail-templates';

export interface QueuedMail {
  template: MailTemplate;
  to: string;
  variables: MailVariables;
}

/** Rows that stand for a mail not yet decided on; each kind has a resolver, registered by its use case. */
export const MAIL_REQUESTS = ['password-reset-request'] as const;
export type MailRequestKind = (typeof MAIL_REQUESTS)[number];

export interface MailRequest {
  kind: MailRequestKind;
  to: string;
  variables: MailVariables;
}

/**
 * Decides, in the worker, what a request becomes. Outside any transaction it checks what it needs (limits,
 * lookups); it returns undefined to drop the request, sending nothing, or the write that makes the mail,
 * which the worker runs in the transaction that turns the request row into that mail.
 */
export type MailRequestResolver = (
  request: MailRequest,
) => Promise<((manager: EntityManager) => Promise<QueuedMail>) | undefined>;

const QUEUED = Symbol('mail queued in this transaction');
type RunnerData = { [QUEUED]?: MailTemplate[] };

/**
 * The transactional outbox: a mail is a row written in the transaction of the change that needs it, so it
 * exists exactly when the change does; MailWorker sends it afterwards, on whichever instance claims it.
 * A request row (enqueueRequest) is a mail whose content the worker decides on when it claims the row.
 */
@Injectable()
export class MailOutbox implements EntitySubscriberInterface {
  private readonly resolvers = new Map<MailRequestKind, MailRequestResolver>();

  constructor(
    @InjectDataSource() dataSource: DataSource,
    private readonly metrics: MetricsService,
  ) {
    dataSource.subscribers.push(this);
  }

  async enqueue(manager: EntityManager, mail: QueuedMail): Promise<void> {
    const runner = inTransaction(manager);
    await manager.query('INSERT INTO mail_outbox (template, recipient, variables) VALUES ($1, $2, $3)', [
      mail.template,
      mail.to,
      JSON.stringify(mail.variables),
    ]);
    countOnCommit(runner, mail.template);
  }

  /**
   * Records a request whose mail the worker decides on later (see MailRequestResolver): the request is
   * durable once the caller's transaction commits, whatever the worker then makes of it.
   */
  async enqueueRequest(manager: EntityManager, request: MailRequest): Promise<void> {
    inTransaction(manager);
    await manager.query('INSERT INTO mail_outbox (template, recipient, variables) VALUES ($1, $2, $3)', [
      request.kind,
      request.to,
      JSON.stringify(request.variables),
    ]);
  }

  resolveRequests(kind: MailRequestKind, resolver: MailRequestResolver): void {
    this.resolvers.set(kind, resolver);
  }

  /** The resolver of a request row, or undefined for a row that already is a mail. */
  resolverFor(template: string): MailRequestResolver | undefined {
    if (!isMailRequest(template)) return undefined;
    const resolver = this.resolvers.get(template);
    if (!resolver) throw new Error(`no resolver for mail requests of kind ${template}`);
    return resolver;
  }

  /** Turns the request row into its mail, in the worker's transaction; counted as queued once committed. */
  async replaceRequest(manager: EntityManager, id: string, mail: QueuedMail): Promise<void> {
    const runner = inTransaction(manager);
    await manager.query(
      'UPDATE mail_outbox SET template = $2, recipient = $3, variables = $4 WHERE id = $1',
      [id, mail.template, mail.to, JSON.stringify(mail.variables)],
    );
    countOnCommit(runner, mail.template);
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    if (event.queryRunner.isTransactionActive) return;
    for (const template of takeQueued(event.queryRunner)) this.metrics.mailQueued.inc({ template });
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    if (!event.queryRunner.isTransactionActive) takeQueued(event.queryRunner);
  }
}

export function isMailRequest(template: string): template is MailRequestKind {
  return (MAIL_REQUESTS as readonly string[]).includes(template);
}

function inTransaction(manager: EntityManager): QueryRunner {
  const runner = manager.queryRunner;
  if (!runner?.isTransactionActive) {
    throw new Error('a mail is written in the transaction of the change that needs it');
  }
  return runner;
}

function countOnCommit(runner: QueryRunner, template: MailTemplate): void {
  const data = runner.data as RunnerData;
  (data[QUEUED] ??= []).push(template);
}

function takeQueued(runner: QueryRunner): MailTemplate[] {
  const data = runner.data as RunnerData;
  const queued = data[QUEUED] ?? [];
  delete data[QUEUED];
  return queued;
}
