import { Module } from '@nestjs/common';
import { APP_CONFIG } from '../config/app-config';
import { MailOutbox } from './mail-outbox';
import { MailTemplates } from './mail-templates';
import { createMailTransport, MailTransport } from './mail-transport';
import { MailWorker } from './mail-worker';

/** Outgoing mail: the outbox other modules write to inside their transactions, and the worker that sends it. */
@Module({
  providers: [
    MailOutbox,
    MailWorker,
    { provide: MailTemplates, useFactory: () => new MailTemplates() },
    { provide: MailTransport, inject: [APP_CONFIG], useFactory: createMailTransport },
  ],
  exports: [MailOutbox],
})
export class MailModule {}
