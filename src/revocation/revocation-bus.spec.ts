import { Logger } from '@nestjs/common';
import {
  CONFIRM_TIMEOUT_MS,
  HEARTBEAT_MS,
  MessageBus,
  PEER_SILENCE_MS,
  RevocationListener,
} from './revocation-bus';
import { EVERY_KEY } from './revocation-cache';

/** A transport that loops messages back while `delivering`, and drops them otherwise (a silent break). */
class LoopbackBus extends MessageBus {
  delivering = true;
  redials = 0;
  readonly sent: string[] = [];

  constructor() {
    super('test');
  }

  protected send(payload: string): Promise<void> {
    this.sent.push(payload);
    if (this.delivering) this.receive(payload);
    return Promise.resolve();
  }

  protected open(): void {
    this.subscribed();
  }

  protected redial(): void {
    this.redials += 1;
  }

  /** As node-redis does, closing the subscriber ends its connection. */
  protected close(): Promise<void> {
    this.broken('connection ended');
    return Promise.resolve();
  }

  dropConnection(): void {
    this.broken();
  }

  reconnect(): void {
    this.subscribed();
  }
}

/**
 * Instances on one transport: a message reaches every subscribed bus, the sender's included, at once, or
 * when the test lets it through for a bus whose subscription it holds back.
 */
class Hub {
  readonly buses: HubBus[] = [];

  join(): HubBus {
    const bus = new HubBus(this);
    this.buses.push(bus);
    return bus;
  }

  deliver(payload: string): void {
    for (const bus of this.buses) bus.arrive(payload);
  }
}

class HubBus extends MessageBus {
  connected = false;
  /** A crashed instance sends and hears nothing, goodbye included. */
  crashed = false;
  holding = false;
  readonly held: string[] = [];

  constructor(private readonly hub: Hub) {
    super('hub');
  }

  protected send(payload: string): Promise<void> {
    if (!this.crashed) this.hub.deliver(payload);
    return Promise.resolve();
  }

  protected open(): void {
    this.connected = true;
    this.subscribed();
  }

  protected redial(): void {}

  protected close(): Promise<void> {
    this.connected = false;
    return Promise.resolve();
  }

  arrive(payload: string): void {
    if (!this.connected || this.crashed) return;
    if (this.holding) this.held.push(payload);
    else this.receive(payload);
  }

  release(): void {
    this.holding = false;
    for (const payload of this.held.splice(0)) this.receive(payload);
  }
}

/** Whether a promise has settled by now (after the microtasks queued so far). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
  return done;
}

function recorder(): RevocationListener & { events: string[] } {
  const events: string[] = [];
  return {
    events,
    changed: (keys) => events.push(`changed ${keys.join(',')}`),
    lost: () => events.push('lost'),
    resumed: () => events.push('resumed'),
  };
}

describe('MessageBus', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('trusts memory only once its own probe came back through the subscription', async () => {
    const bus = new LoopbackBus();
    bus.delivering = false;
    const listener = recorder();
    bus.start(listener);
    expect(listener.events).toEqual([]);
    bus.delivering = true;
    bus.reconnect();
    expect(listener.events).toEqual(['resumed']);
    await bus.stop();
  });

  it('stops without reporting its own closing as a broken subscription', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const bus = new LoopbackBus();
      bus.start(recorder());
      await bus.stop();
      expect(warn).not.toHaveBeenCalled();
      bus.start(recorder());
      bus.dropConnection();
      expect(warn).toHaveBeenCalledTimes(1);
      await bus.stop();
    } finally {
      warn.mockRestore();
    }
  });

  it('reports a loss at once when the subscription drops, and resumes after the next probe', async () => {
    const bus = new LoopbackBus();
    const listener = recorder();
    bus.start(listener);
    bus.dropConnection();
    bus.reconnect();
    expect(listener.events).toEqual(['resumed', 'lost', 'resumed']);
    await bus.stop();
  });

  it('reports a loss and redials when a probe does not come back within a heartbeat (a silent break)', async () => {
    const bus = new LoopbackBus();
    const listener = recorder();
    bus.start(listener);
    bus.delivering = false;
    jest.advanceTimersByTime(HEARTBEAT_MS);
    expect(listener.events).toEqual(['resumed']);
    jest.advanceTimersByTime(HEARTBEAT_MS);
    expect(listener.events).toEqual(['resumed', 'lost']);
    expect(bus.redials).toBe(1);
    // Healed: the probe lost in the break counts once more, the next one comes back; no second redial.
    bus.delivering = true;
    jest.advanceTimersByTime(HEARTBEAT_MS);
    expect(listener.events).toEqual(['resumed', 'lost', 'lost', 'resumed']);
    expect(bus.redials).toBe(1);
    await bus.stop();
  });

  it('passes invalidations on, and asks for everything to be dropped when the keys would not fit', async () => {
    const bus = new LoopbackBus();
    const listener = recorder();
    bus.start(listener);
    await bus.publish(['user:1', 'family:2']);
    await bus.publish(Array.from({ length: 500 }, (_, i) => `family:${'f'.repeat(30)}${i}`));
    expect(listener.events).toEqual(['resumed', 'changed user:1,family:2', `changed ${EVERY_KEY}`]);
    expect(Math.max(...bus.sent.map((payload) => Buffer.byteLength(payload)))).toBeLessThan(8000);
    await bus.stop();
  });

  it('ignores probes of other instances and malformed messages', async () => {
    const bus = new LoopbackBus();
    const listener = recorder();
    bus.delivering = false;
    bus.start(listener);
    (bus as unknown as { receive(payload: string): void }).receive('{"probe":"someone-else:1"}');
    (bus as unknown as { receive(payload: string): void }).receive('not json');
    expect(listener.events).toEqual([]);
    await bus.stop();
  });

  describe('across instances', () => {
    /** Two started instances that have heard each other's probes. */
    function pair(): { hub: Hub; a: HubBus; b: HubBus; onA: ReturnType<typeof recorder> } {
      const hub = new Hub();
      const a = hub.join();
      const b = hub.join();
      const onA = recorder();
      a.start(onA);
      b.start(recorder());
      jest.advanceTimersByTime(HEARTBEAT_MS);
      return { hub, a, b, onA };
    }

    it('a publisher knows the instances it has heard probing, and forgets one silent for a while', async () => {
      const { a, b } = pair();
      expect(b.peerCount).toBe(1);
      expect(a.peerCount).toBe(1);
      a.crashed = true;
      jest.advanceTimersByTime(PEER_SILENCE_MS - HEARTBEAT_MS);
      expect(b.peerCount).toBe(1);
      jest.advanceTimersByTime(2 * HEARTBEAT_MS);
      expect(b.peerCount).toBe(0);
      expect(await settled(b.publish(['user:0']))).toBe(true);
      await a.stop();
      await b.stop();
    });

    it('publishing resolves only once every peer has handled the invalidation', async () => {
      const { a, b, onA } = pair();
      a.holding = true;
      const publishing = b.publish(['family:1']);
      expect(await settled(publishing)).toBe(false);
      expect(onA.events).not.toContain('changed family:1');
      a.release();
      expect(onA.events).toContain('changed family:1');
      expect(await settled(publishing)).toBe(true);
      await a.stop();
      await b.stop();
    });

    it('a peer that never confirms holds a publisher for CONFIRM_TIMEOUT_MS at most, with a warning', async () => {
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        const { a, b } = pair();
        a.holding = true;
        const publishing = b.publish(['user:1']);
        jest.advanceTimersByTime(CONFIRM_TIMEOUT_MS - 1);
        expect(await settled(publishing)).toBe(false);
        jest.advanceTimersByTime(1);
        expect(await settled(publishing)).toBe(true);
        expect(warn).toHaveBeenCalledWith(expect.stringContaining(a.connectionName));
        a.holding = false;
        await a.stop();
        await b.stop();
      } finally {
        warn.mockRestore();
      }
    });

    it('a peer that says goodbye is no longer waited for, not even by a publisher already waiting', async () => {
      const { a, b } = pair();
      a.holding = true;
      const publishing = b.publish(['user:2']);
      expect(await settled(publishing)).toBe(false);
      await a.stop();
      expect(await settled(publishing)).toBe(true);
      expect(b.peerCount).toBe(0);
      expect(await settled(b.publish(['user:3']))).toBe(true);
      await b.stop();
    });

    it('an instance that leaves stops using memory and is not waited for, though it still publishes', async () => {
      const { a, b, onA } = pair();
      onA.events.splice(0);
      await a.leave();
      expect(onA.events).toEqual(['lost']);
      expect(b.peerCount).toBe(0);
      jest.advanceTimersByTime(2 * HEARTBEAT_MS);
      expect(onA.events).toEqual(['lost']);
      // Its requests still draining may revoke: the peers hear it, and do not take it for a member again.
      const leavingPublishes = a.publish(['user:5']);
      expect(await settled(leavingPublishes)).toBe(true);
      expect(b.peerCount).toBe(0);
      expect(await settled(b.publish(['user:6']))).toBe(true);
      await a.stop();
      await b.stop();
    });

    it('a lone instance publishes without waiting', async () => {
      const hub = new Hub();
      const alone = hub.join();
      alone.start(recorder());
      jest.advanceTimersByTime(HEARTBEAT_MS);
      expect(alone.peerCount).toBe(0);
      expect(await settled(alone.publish(['user:4']))).toBe(true);
      await alone.stop();
    });
  });
});
