import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { MessageBus } from './revocation-bus';

const CHANNEL = 'auth_revocations';
const NOTIFY = 'SELECT pg_notify($1, $2)';
const reconnectDelay = (retries: number): number => Math.min(100 * 2 ** retries, 2000);

/**
 * Invalidations over PostgreSQL LISTEN/NOTIFY, for instances sharing a database without Redis, on one
 * dedicated connection per instance, reopened with backoff whenever it drops. Invalidations are notified on
 * that connection too: announcing runs while the committed transaction still holds its pool connection, so
 * a pool exhausted by committing transactions would wait on itself (only while it is down do they take the
 * pool). Probes take the pool, as another instance's notifications would: a server that delivers a
 * connection's notifications to itself alone (the embedded database's socket) is never trusted.
 */
export class PostgresRevocationBus extends MessageBus {
  private connection?: Client;
  private listening = false;
  private retries = 0;
  private closed = false;
  private retryTimer?: NodeJS.Timeout;

  constructor(
    private readonly url: string,
    private readonly dataSource: DataSource,
  ) {
    super('auth-revocations');
  }

  protected async send(payload: string): Promise<void> {
    if (this.connection && this.listening) await this.connection.query(NOTIFY, [CHANNEL, payload]);
    else await this.sendProbe(payload);
  }

  protected override async sendProbe(payload: string): Promise<void> {
    await this.dataSource.query(NOTIFY, [CHANNEL, payload]);
  }

  protected open(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    const client = new Client({
      connectionString: this.url,
      application_name: this.connectionName,
      keepAlive: true,
      connectionTimeoutMillis: 3000,
    });
    this.connection = client;
    client.on('notification', (notification) => {
      if (notification.channel === CHANNEL && notification.payload) this.receive(notification.payload);
    });
    client.on('error', () => this.reconnectLater(client));
    client.on('end', () => this.reconnectLater(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      this.listening = true;
      this.retries = 0;
      this.subscribed();
    } catch {
      this.reconnectLater(client);
    }
  }

  protected redial(): void {
    if (this.connection && this.listening) this.reconnectLater(this.connection);
  }

  private reconnectLater(client: Client): void {
    if (client !== this.connection) return;
    this.connection = undefined;
    this.listening = false;
    this.broken();
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.retryTimer = setTimeout(() => void this.connect(), reconnectDelay(this.retries));
    this.retryTimer.unref();
    this.retries += 1;
  }

  protected async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const client = this.connection;
    this.connection = undefined;
    await client?.end().catch(() => undefined);
  }
}
