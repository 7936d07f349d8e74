import { Logger } from '@nestjs/common';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTransport } from 'nodemailer';
import type { AppConfig } from '../config/app-config';
import type { RenderedMail } from './mail-templates';

export interface OutgoingMail extends RenderedMail {
  /** The outbox row's id: the Message-ID, so a receiver can tell a resent mail from a new one. */
  id: string;
  to: string;
  /** The link the mail carries, for the development log; never logged when mail goes over SMTP. */
  link?: string;
}

/** Hands a mail over for delivery; resolves once the server (or the file) has it, rejects otherwise. */
export abstract class MailTransport {
  abstract send(mail: OutgoingMail): Promise<void>;
  abstract close(): void;
}

/**
 * Bounds on one SMTP exchange. The worker's claim on a mail (MailWorker's lease) outlasts their sum, so no
 * other instance picks a mail up while a send of it may still complete.
 */
export const SMTP_TIMEOUTS_MS = { connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 30_000 };

export class SmtpMailTransport extends MailTransport {
  private readonly transporter;

  constructor(
    url: string,
    from: string,
    private readonly host: string,
  ) {
    super();
    // One connection per send: mail is rare, and a broken pooled connection would fail the next mail too.
    this.transporter = createTransport({ url, ...SMTP_TIMEOUTS_MS }, { from });
  }

  async send(mail: OutgoingMail): Promise<void> {
    await this.transporter.sendMail(message(mail, this.host));
  }

  close(): void {
    this.transporter.close();
  }
}

/** Development without MAIL_URL: each mail becomes an .eml file under DATA_DIR/mail/, and its link is logged. */
export class FileMailTransport extends MailTransport {
  private readonly logger = new Logger('Mail');
  private readonly transporter;

  constructor(
    private readonly directory: string,
    from: string,
    private readonly host: string,
  ) {
    super();
    this.transporter = createTransport({ streamTransport: true, buffer: true, newline: 'unix' }, { from });
  }

  async send(mail: OutgoingMail): Promise<void> {
    const info = await this.transporter.sendMail(message(mail, this.host));
    await mkdir(this.directory, { recursive: true });
    const path = join(this.directory, `${new Date().toISOString().replace(/[:.]/g, '-')}-${mail.id}.eml`);
    // Written aside and renamed: whoever watches the directory never reads half a mail.
    await writeFile(`${path}.part`, info.message as Buffer);
    await rename(`${path}.part`, path);
    this.logger.log(
      `mail "${mail.subject}" to ${mail.to} written to ${path}${mail.link ? `; link: ${mail.link}` : ''}`,
    );
  }

  close(): void {
    this.transporter.close();
  }
}

function message(mail: OutgoingMail, host: string) {
  return {
    to: mail.to,
    subject: mail.subject,
    text: mail.text,
    html: mail.html,
    messageId: `<${mail.id}@${host}>`,
  };
}

export function createMailTransport(config: AppConfig): MailTransport {
  const host = new URL(config.http.publicUrl).hostname;
  if (config.mail.url) return new SmtpMailTransport(config.mail.url, config.mail.from, host);
  return new FileMailTransport(join(config.database.dataDir, 'mail'), config.mail.from, host);
}
