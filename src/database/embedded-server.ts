import type { PGlite } from '@electric-sql/pglite';
import { createServer, Server, Socket } from 'node:net';

const SSL_REQUEST = 80_877_103;
const GSSENC_REQUEST = 80_877_104;
const CANCEL_REQUEST = 80_877_102;
const READY_FOR_QUERY = 0x5a; // 'Z'
const IDLE = 0x49; // 'I': the status byte of a ReadyForQuery outside any transaction block
const TERMINATE = 0x58; // 'X'
const SYNC = Buffer.from([0x53, 0, 0, 0, 4]);
const PRE_STARTUP_REQUESTS = new Set([SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST]);

/**
 * Serves one PGlite database to many `pg` connections on a Unix socket.
 *
 * PGlite is a single PostgreSQL session, so every connection shares its unnamed statement and portal, its
 * transaction and its error state. A connection therefore gets the session for a whole exchange: from its
 * first message until the backend answers ReadyForQuery outside a transaction block. A parameterised
 * query (Parse, Bind, Describe, Execute, Sync) or a transaction never has another connection's messages
 * in its middle. pglite-socket's server takes turns per message and keeps a connection only inside an
 * explicit transaction, so concurrent queries clobber each other's unnamed statement and portal
 * (electric-sql/pglite#1046).
 */
export class EmbeddedServer {
  private readonly server: Server;
  private readonly connections = new Set<EmbeddedConnection>();
  private readonly turns = new Turns();

  constructor(db: PGlite) {
    this.server = createServer((socket) => {
      const connection = new EmbeddedConnection(socket, db, this.turns);
      this.connections.add(connection);
      socket.once('close', () => this.connections.delete(connection));
    });
  }

  listen(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(path, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** Stops accepting, ends every connection and waits until none is inside the database. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.connections].map((connection) => connection.end()));
    await closed;
  }
}

/** First come, first served: a release hands the session straight to the next waiter, never to a newcomer. */
class Turns {
  private held = false;
  private readonly waiting: (() => void)[] = [];

  async take(): Promise<() => void> {
    if (this.held) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.held = false;
    };
  }
}

class EmbeddedConnection {
  private input = Buffer.alloc(0);
  private readonly messages: { beforeStartup: boolean; bytes: Buffer }[] = [];
  /** Set as soon as the startup message is framed: everything after it is a typed message. */
  private startedUp = false;
  private release: (() => void) | undefined;
  private work: Promise<void> = Promise.resolve();
  private ended = false;

  constructor(
    private readonly socket: Socket,
    private readonly db: PGlite,
    private readonly turns: Turns,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => void this.end());
  }

  /** Gives the session back, rolling back whatever this connection left open in it. */
  end(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      this.messages.length = 0;
      this.socket.destroy();
      this.work = this.work.then(() => this.abandon());
    }
    return this.work;
  }

  private receive(chunk: Buffer): void {
    if (this.ended) return;
    this.input = Buffer.concat([this.input, chunk]);
    for (;;) {
      const length = this.nextMessageLength();
      if (length !== undefined && length < (this.startedUp ? 5 : 8)) return void this.end();
      if (length === undefined || this.input.length < length) break;
      const bytes = this.input.subarray(0, length);
      this.input = this.input.subarray(length);
      this.messages.push({ beforeStartup: !this.startedUp, bytes });
      if (!this.startedUp && !PRE_STARTUP_REQUESTS.has(bytes.readInt32BE(4))) this.startedUp = true;
    }
    this.work = this.work.then(() => this.drain());
  }

  /** Before startup a message is a length and a code; after it, a type byte and a length. */
  private nextMessageLength(): number | undefined {
    if (this.startedUp) return this.input.length >= 5 ? 1 + this.input.readInt32BE(1) : undefined;
    return this.input.length >= 8 ? this.input.readInt32BE(0) : undefined;
  }

  private async drain(): Promise<void> {
    while (!this.ended && this.messages.length > 0) {
      const { beforeStartup, bytes } = this.messages.shift()!;
      try {
        if (beforeStartup) await this.startUp(bytes);
        else await this.execute(bytes);
      } catch {
        // PGlite itself failed (closed, or its WebAssembly aborted): the client sees a dropped connection.
        void this.end();
      }
    }
  }

  private async startUp(message: Buffer): Promise<void> {
    const code = message.readInt32BE(4);
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      this.socket.write('N');
      return;
    }
    // PGlite has no other backend to cancel a query on.
    if (code === CANCEL_REQUEST) return void this.socket.end();
    await this.execute(message);
  }

  private async execute(message: Buffer): Promise<void> {
    if (message[0] === TERMINATE) return void this.end();
    this.release ??= await this.turns.take();
    if (this.ended) return;
    const output: Buffer[] = [];
    await this.db.runExclusive(() =>
      this.db.execProtocolRawStream(message, {
        onRawData: (data) => {
          // A view into PGlite's memory, valid only during this call.
          const copy = Buffer.from(data);
          output.push(copy);
          if (!this.ended) this.socket.write(copy);
        },
      }),
    );
    if (endsAtRest(Buffer.concat(output))) this.releaseTurn();
  }

  private async abandon(): Promise<void> {
    if (!this.release) return;
    try {
      // Ends a half-sent parameterised query, then rolls back a transaction left open.
      await this.db.runExclusive(() => this.db.execProtocolRaw(SYNC));
      if (this.db.isInTransaction()) await this.db.runExclusive(() => this.db.execProtocolRaw(ROLLBACK));
    } catch {
      // The database is closing: there is nothing left to roll back.
    } finally {
      this.releaseTurn();
    }
  }

  private releaseTurn(): void {
    const release = this.release;
    this.release = undefined;
    release?.();
  }
}

const ROLLBACK = simpleQuery('ROLLBACK');

function simpleQuery(sql: string): Buffer {
  const text = Buffer.from(`${sql}\0`);
  const header = Buffer.alloc(5);
  header.write('Q', 0);
  header.writeInt32BE(4 + text.length, 1);
  return Buffer.concat([header, text]);
}

/** True when the last backend message is ReadyForQuery outside a transaction block. */
function endsAtRest(output: Buffer): boolean {
  let last = -1;
  for (let at = 0; at + 5 <= output.length; at += 1 + output.readInt32BE(at + 1)) last = at;
  return last >= 0 && output[last] === READY_FOR_QUERY && output[last + 5] === IDLE;
}
