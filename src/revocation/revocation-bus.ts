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

  async stop(): Promise<void> {}
}

/** How often a bus sends itself a probe; one that has not come back by the next beat means a broken link. */
export const HEARTBEAT_MS = 2000;

/** Keeps each message under PostgreSQL's 8000-byte NOTIFY payload limit; beyond it, everything is dropped. */
const MAX_PAYLOAD_BYTES = 7900;

interface Message {
  changed?: readonly string[];
  probe?: string;
}

/**
 * A bus over a publish/subscribe transport. Memory is trusted only after a probe this instance sent has
 * come back through the subscription, and is dropped the moment the subscription reports trouble or a
 * probe fails to return within a heartbeat: silent breaks are caught too, within two heartbeats.
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
  /** Whether the last probe came back; what the log tells of, once per change. */
  private live = false;
  private everLive = false;

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
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    this.open();
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    this.listener = undefined;
    // A subscription closed on purpose is not a broken one: no warning at shutdown.
    this.live = false;
    await this.close();
  }

  publish(keys: readonly string[]): Promise<void> {
    let payload = JSON.stringify({ changed: keys } satisfies Message);
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) payload = JSON.stringify({ changed: [EVERY_KEY] });
    return this.send(payload);
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
    if (Array.isArray(message.changed)) {
      this.listener?.changed(message.changed.filter((key) => typeof key === 'string'));
    } else if (message.probe !== undefined && message.probe === this.awaitedProbe) {
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
    if (!this.listener) return;
    this.probes += 1;
    const probe = `${this.connectionName}:${this.probes}`;
    this.awaitedProbe = probe;
    this.awaitedSince = Date.now();
    try {
      await this.sendProbe(JSON.stringify({ probe } satisfies Message));
    } catch (error) {
      if (this.awaitedProbe === probe) this.broken(`probe not sent: ${(error as Error).message}`);
    }
  }
}
