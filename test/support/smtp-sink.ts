import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { freePort } from './instances';
import type { Env, TestStorage } from './test-app';

/** A message as the SMTP server received it, parsed. */
export interface ReceivedMail {
  to: string;
  subject: string;
  text: string;
  html: string;
  messageId: string;
  raw: string;
}

/**
 * A real SMTP server in the test process (the `smtp-server` package) that keeps what it is sent. `stop`
 * and `start` take it down and bring it back on the same port, as an outage would.
 */
export interface SmtpSink {
  url: string;
  messages: ReceivedMail[];
  /** Resolves with the first message (already received or yet to come) that matches. */
  waitFor(match: (mail: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>;
  to(address: string): ReceivedMail[];
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const port = await freePort();
  const messages: ReceivedMail[] = [];
  const waiters = new Set<() => void>();
  let server: SMTPServer | undefined;

  const listen = async () => {
    server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream, _session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks);
          simpleParser(raw).then(
            (parsed) => {
              const to = Array.isArray(parsed.to) ? parsed.to[0] : parsed.to;
              messages.push({
                to: to?.value[0]?.address ?? '',
                subject: parsed.subject ?? '',
                text: parsed.text ?? '',
                html: typeof parsed.html === 'string' ? parsed.html : '',
                messageId: parsed.messageId ?? '',
                raw: raw.toString('utf8'),
              });
              for (const wake of waiters) wake();
              callback();
            },
            (error: Error) => callback(error),
          );
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(port, '127.0.0.1', () => resolve());
    });
  };
  await listen();

  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    to: (address) => messages.filter((mail) => mail.to === address),
    waitFor(match, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(match);
          if (!found) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching mail within ${timeoutMs} ms; received ${messages.length}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop() {
      const closing = server;
      server = undefined;
      if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
    },
    start: listen,
  };
}

/** The token of the first link in a mail's plain-text part that points at `page`. */
export function linkToken(mail: ReceivedMail, page: string): string {
  const match = new RegExp(`https?://\\S+${page}\\?token=([A-Za-z0-9_-]+)`).exec(mail.text);
  if (!match?.[1]) throw new Error(`no ${page} link in mail "${mail.subject}":\n${mail.text}`);
  return match[1];
}

/** Where the mailed links of `mailEnv` point. */
export const MAIL_FRONTEND = 'https://app.example.com';

/** The environment of a service whose mail goes to `sink`, polled fast so tests wait little. */
export function mailEnv(storage: TestStorage, sink: SmtpSink, extra: Env = {}): Env {
  return {
    ...storage.env,
    MAIL_URL: sink.url,
    MAIL_FROM: 'Auth <no-reply@example.com>',
    FRONTEND_URL: MAIL_FRONTEND,
    MAIL_POLL_INTERVAL_MS: '50',
    MAIL_RETRY_BASE_MS: '200',
    ...extra,
  };
}
