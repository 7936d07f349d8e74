import { Logger } from '@nestjs/common';
import { HEARTBEAT_MS, MessageBus, RevocationListener } from './revocation-bus';
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
});
