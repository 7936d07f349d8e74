import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { EVERY_KEY } from './revocation-cache';

/** What a bus tells the cache of its instance. */
export interface RevocationListener {
  /** Revocation state under these keys changed on some instance. */
  changed(keys: readonly string[]): void;
  /** Invalidations may be getting lost: stop trusting memory. */
  lost(): void;
  /** Invalidations are known to arrive again. */
  resumed(): void;
}

/**
 * Carries invalidations of revocation state between the instances sharing one database. The DI token; the
 * implementation is picked from the configuration (revocation.module.ts).
 */
export abstract class RevocationBus {
  abstract start(listener: RevocationListener): void;
  abstract publish(keys: readonly string[]): Promise<void>;
  /**
   * A shutdown begins (requests in flight still finish): from now on memory is not used, so no other
   * instance needs to wait for this one.
   */
  abstract leave(): Promise<void>;
  abstract stop(): Promise<void>;
}

/**
 * The embedded database is served by this process alone, so every change is made here and the commit hook
 * has already applied it: nothing to carry, and memory is trusted from the start.
 */
export class LocalRevocationBus extends RevocationBus {
  start(listener: RevocationListener): void {
    listener.resumed();
  }

  async publish(): Promise<void> {}

  async leave(): Promise<void> {}

  async stop(): Promise<void> {}
}

/** How often a bus sends itself a probe; one that has not come back by the next beat means a broken link. */
export const HEARTBEAT_MS = 2000;

/**
 * How long a publisher waits for the other instances to confirm an invalidation. One that has not by then is
 * gone (its silence soon drops it from the peers) or lagging, and a lag that reaches a heartbeat drops its cache.
 */
export const CONFIRM_TIMEOUT_MS = HEARTBEAT_MS;

/** A peer not heard from for this long (it probes every heartbeat) has stopped: no longer waited for. */
export const PEER_SILENCE_MS = 3 * HEARTBEAT_MS;

/** How long a stopping instance tries to say goodbye. */
const GOODBYE_TIMEOUT_MS = 1000;

/** Keeps each message under PostgreSQL's 8000-byte NOTIFY payload limit; beyond it, everything is dropped. */
const MAX_PAYLOAD_BYTES = 7900;

interface Message {
  /** The sending instance's connection name; messages of instances that predate it have none. */
  from?: string;
  changed?: readonly string[];
  /** Names an invalidation, for its confirmations. */
  id?: string;
  /** The id of an invalidation handled by the sender. */
  confirms?: string;
  probe?: string;
  /** The sender stopped: no longer wait for it. */
  bye?: boolean;
}

interface Unconfirmed {
  peers: Set<string>;
  done(): void;
}

/**
 * A bus over a publish/subscribe transport. Memory is trusted only after a probe this instance sent has
 * come back through the subscription, and is dropped the moment the subscription reports trouble or a
 * probe fails to return within a heartbeat: silent breaks are caught too, within two heartbeats.
 *
 * Delivery is asynchronous, so a publisher waits until every peer it has heard from has confirmed that it
 * handled the invalidation: the revoking response leaves only then, and the client's next request finds no
 * instance still holding the old state, however slowly that instance's subscription is being served.
 */
export abstract class MessageBus extends RevocationBus {
  /** Names this instance's subscription connection (Redis CLIENT SETNAME, PostgreSQL application_name). */
  readonly connectionName: string;
  protected readonly logger = new Logger('Revocations');
  private listener?: RevocationListener;
  private heartbeat?: NodeJS.Timeout;
  private awaitedProbe?: string;
  private awaitedSince = 0;
  private probes = 0;
  private published = 0;
  /** Other instances on this bus, by when they were last heard from. */
  private readonly peers = new Map<string, number>();
  private readonly unconfirmed = new Map<string, Unconfirmed>();
  /** Whether the last probe came back; what the log tells of, once per change. */
  private live = false;
  private everLive = false;
  private leaving = false;

  protected constructor(label: string) {
    super();
    this.connectionName = `${label}:${randomBytes(6).toString('hex')}`;
  }

  /** Sends a payload to every subscriber, this instance included. */
  protected abstract send(payload: string): Promise<void>;
  /** Sends a probe; by the path other instances' invalidations take, where that differs. */
  protected sendProbe(payload: string): Promise<void> {
    return this.send(payload);
  }
  /** Opens the subscription; calls `subscribed()` each time it is (re-)established, `broken()` on trouble. */
  protected abstract open(): void;
  /** The subscription looks open but carries nothing (a silent partition): drop it and dial again. */
  protected abstract redial(): void;
  protected abstract close(): Promise<void>;

  start(listener: RevocationListener): void {
    this.listener = listener;
    this.leaving = false;
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    this.open();
  }

  async leave(): Promise<void> {
    if (this.leaving) return;
    this.leaving = true;
    clearInterval(this.heartbeat);
    // Dropped on purpose, not broken: no warning. The drain reads the database, which is exact.
    this.live = false;
    this.awaitedProbe = undefined;
    this.listener?.lost();
    // A goodbye that cannot go out in time only costs the peers a confirmation timeout or two.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.send(this.encode({ bye: true })).catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, GOODBYE_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    await this.leave();
    this.listener = undefined;
    for (const waiting of this.unconfirmed.values()) waiting.done();
    await this.close();
  }

  /** How many other instances this one has heard from lately: those it waits for. */
  get peerCount(): number {
    return this.currentPeers().size;
  }

  /** Resolves once every current peer confirmed the invalidation, or after CONFIRM_TIMEOUT_MS. */
  async publish(keys: readonly string[]): Promise<void> {
    this.published += 1;
    const id = `${this.connectionName}/${this.published}`;
    let payload = this.encode({ changed: keys, id });
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) payload = this.encode({ changed: [EVERY_KEY], id });
    const peers = this.currentPeers();
    if (peers.size === 0) return this.send(payload);
    const confirmed = this.confirmations(id, peers);
    try {
      await this.send(payload);
    } catch (error) {
      this.unconfirmed.get(id)?.done();
      throw error;
    }
    await confirmed;
  }

  private confirmations(id: string, peers: Set<string>): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.logger.warn(
          `revocation not confirmed within ${CONFIRM_TIMEOUT_MS} ms by ${[...peers].join(', ')}; answering anyway`,
        );
        done();
      }, CONFIRM_TIMEOUT_MS);
      timer.unref();
      const done = (): void => {
        clearTimeout(timer);
        this.unconfirmed.delete(id);
        resolve();
      };
      this.unconfirmed.set(id, { peers, done });
    });
  }

  private currentPeers(): Set<string> {
    const heardSince = Date.now() - PEER_SILENCE_MS;
    for (const [peer, heardAt] of this.peers) if (heardAt < heardSince) this.peers.delete(peer);
    return new Set(this.peers.keys());
  }

  /** `peer` handled the invalidation `id`, or (without one) will answer none of those awaited. */
  private confirmedBy(peer: string, id?: string): void {
    const waiting = id === undefined ? [...this.unconfirmed.values()] : [this.unconfirmed.get(id)];
    for (const entry of waiting) {
      if (entry?.peers.delete(peer) && entry.peers.size === 0) entry.done();
    }
  }

  private encode(message: Omit<Message, 'from'>): string {
    return JSON.stringify({ from: this.connectionName, ...message } satisfies Message);
  }

  /** A new subscription is trusted once a probe sent after it comes back; earlier probes no longer count. */
  protected subscribed(): void {
    void this.probe();
  }

  protected broken(reason = 'connection lost'): void {
    if (this.live) this.logger.warn(`revocation subscription broken (${reason}): reading from the database`);
    this.live = false;
    this.awaitedProbe = undefined;
    this.listener?.lost();
  }

  protected receive(payload: string): void {
    let message: Message;
    try {
      message = JSON.parse(payload) as Message;
    } catch {
      return;
    }
    const from =
      typeof message.from === 'string' && message.from !== this.connectionName ? message.from : undefined;
    if (from !== undefined) {
      if (message.bye === true) {
        this.peers.delete(from);
        this.confirmedBy(from);
        return;
      }
      // Only probes make a peer: an instance that left may still publish while its requests drain.
      if (message.probe !== undefined) this.peers.set(from, Date.now());
    }
    if (Array.isArray(message.changed)) {
      if (!this.listener) return;
      this.listener.changed(message.changed.filter((key) => typeof key === 'string'));
      if (from !== undefined && typeof message.id === 'string') {
        this.send(this.encode({ confirms: message.id })).catch(() => undefined);
      }
    } else if (typeof message.confirms === 'string') {
      if (from !== undefined) this.confirmedBy(from, message.confirms);
    } else if (message.probe !== undefined && message.probe === this.awaitedProbe && !this.leaving) {
      this.awaitedProbe = undefined;
      if (!this.live && this.everLive) this.logger.log('revocation subscription restored');
      this.live = true;
      this.everLive = true;
      this.listener?.resumed();
    }
  }

  private async beat(): Promise<void> {
    if (!this.listener) return;
    if (this.awaitedProbe !== undefined) {
      // A probe sent just before this beat (on resubscription) gets until the next one.
      if (Date.now() - this.awaitedSince < HEARTBEAT_MS / 2) return;
      // A connection that carried probes and went quiet is a silent partition; one that never carried any
      // is a server that does not deliver them, which dialling again would not change.
      const wasLive = this.live;
      this.broken(wasLive ? 'no probe came back; reconnecting' : 'no probe came back');
      if (wasLive) this.redial();
    }
    await this.probe();
  }

  private async probe(): Promise<void> {
    if (!this.listener || this.leaving) return;
    this.probes += 1;
    const probe = `${this.connectionName}:${this.probes}`;
    this.awaitedProbe = probe;
    this.awaitedSince = Date.now();
    try {
      await this.sendProbe(this.encode({ probe }));
    } catch (error) {
      if (this.awaitedProbe === probe) this.broken(`probe not sent: ${(error as Error).message}`);
    }
  }
}
