import { connect, createServer, NetConnectOpts, Server, Socket } from 'node:net';
import type { Env } from './test-app';

type Mode = 'open' | 'cut' | 'blackhole';

interface Link {
  client: Socket;
  upstream?: Socket;
}

/**
 * A TCP hop between the service and PostgreSQL or Redis that a test can break:
 * `cut()` resets every connection and every new one (the server crashed or the network refuses);
 * `blackhole()` keeps connections open but forwards nothing, and accepts new ones that never answer
 * (a partition, a frozen server); `restore()` forwards again, resetting what the black hole held, as a
 * healed network does to connections whose peers gave up.
 */
export class TcpProxy {
  private mode: Mode = 'open';
  private readonly links = new Set<Link>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: NetConnectOpts): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const proxy = new TcpProxy(server, typeof address === 'object' && address ? address.port : 0);
    server.on('connection', (client: Socket) => proxy.accept(client, target));
    return proxy;
  }

  /** How many connections pass through right now. */
  get connections(): number {
    return this.links.size;
  }

  cut(): void {
    this.mode = 'cut';
    for (const link of this.links) this.drop(link);
  }

  blackhole(): void {
    this.mode = 'blackhole';
    for (const link of this.links) {
      if (link.upstream) {
        link.client.unpipe(link.upstream);
        link.upstream.unpipe(link.client);
        link.upstream.pause();
      }
      link.client.pause();
    }
  }

  restore(): void {
    if (this.mode === 'blackhole') for (const link of this.links) this.drop(link);
    this.mode = 'open';
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, target: NetConnectOpts): void {
    client.on('error', () => undefined);
    if (this.mode === 'cut') {
      client.resetAndDestroy();
      return;
    }
    const link: Link = { client };
    this.links.add(link);
    client.once('close', () => this.drop(link));
    if (this.mode === 'blackhole') {
      client.pause();
      return;
    }
    const upstream = connect(target);
    link.upstream = upstream;
    upstream.on('error', () => undefined);
    upstream.once('close', () => this.drop(link));
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private drop(link: Link): void {
    if (!this.links.delete(link)) return;
    reset(link.client);
    if (link.upstream) reset(link.upstream);
  }
}

/** A TCP reset where the socket is TCP; a Unix socket (the embedded database's) can only be closed. */
function reset(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/**
 * A proxy in front of the database a SharedDatabase environment names (PostgreSQL's port, or the embedded
 * server's socket), and that environment pointed through it.
 */
export async function proxyDatabase(env: Env): Promise<{ proxy: TcpProxy; env: Env }> {
  const database = new URL(env.DATABASE_URL!);
  const socketDir = database.searchParams.get('host');
  const proxy = await TcpProxy.start(
    socketDir
      ? { path: `${socketDir}/.s.PGSQL.5432` }
      : { host: database.hostname, port: Number(database.port || 5432) },
  );
  const viaProxy = new URL(`postgresql://${database.username || 'postgres'}@127.0.0.1:${proxy.port}`);
  viaProxy.pathname = database.pathname;
  return { proxy, env: { ...env, DATABASE_URL: viaProxy.toString() } };
}
