import type { User } from './types.js';

export type SignedOutReason = 'logout' | 'revoked' | 'expired';

/** What one tab tells the others of the same origin. */
export type TabMessage =
  | {
      type: 'refreshed';
      accessToken: string;
      expiresAt: number;
      lifetimeMs: number;
      csrfToken?: string;
      user: User;
    }
  | { type: 'signed-out'; reason: SignedOutReason };

/**
 * Runs refreshes one at a time and tells the other tabs about them. In a browser that is one refresh across
 * every tab of the origin (a Web Lock, with a BroadcastChannel carrying the result); elsewhere (Node, old
 * browsers) one at a time within this client.
 */
export interface Tabs {
  /** Runs `task` while no other tab (or call of this client) runs one under the same name. */
  exclusive<T>(task: (waitedSince: number) => Promise<T>): Promise<T>;
  announce(message: TabMessage): void;
  /** Resolves with the next `refreshed` message from another tab, or undefined after `timeoutMs`. */
  nextRefresh(timeoutMs: number): Promise<TabMessage | undefined>;
  /** When a tab announced a refresh last (epoch ms), whether or not its message arrived here yet. */
  lastRefreshAnnounced(): Promise<number>;
  close(): void;
}

interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
  query(): Promise<{ held?: { name?: string }[]; pending?: { name?: string }[] }>;
}

/**
 * How long a tab keeps the lock that says when it refreshed: far longer than a message between tabs takes,
 * far shorter than an access token lives.
 */
const MARKER_HOLD_MS = 30_000;

interface ChannelLike {
  onmessage: ((event: { data: TabMessage }) => void) | null;
  postMessage(message: TabMessage): void;
  close(): void;
  /** Node's channels have it: one that is listened to must not keep the process alive by itself. */
  unref?(): void;
}
type ChannelConstructor = new (name: string) => ChannelLike;

export function tabsFor(name: string, onMessage: (message: TabMessage) => void): Tabs {
  // Typed by what is used of them, so that the client compiles against Node's types as well as the DOM's.
  const scope = globalThis as unknown as {
    navigator?: { locks?: LockManagerLike };
    BroadcastChannel?: ChannelConstructor;
  };
  const locks = scope.navigator?.locks;
  const Channel = scope.BroadcastChannel;
  if (locks && Channel) return new BrowserTabs(new Channel(name), name, locks, onMessage);
  return new LoneTab();
}

class BrowserTabs implements Tabs {
  private readonly waiting = new Set<(message: TabMessage) => void>();
  private readonly markerPrefix: string;

  constructor(
    private readonly channel: ChannelLike,
    private readonly name: string,
    private readonly locks: LockManagerLike,
    onMessage: (message: TabMessage) => void,
  ) {
    this.markerPrefix = `${name}:refreshed-at:`;
    channel.unref?.();
    this.channel.onmessage = (event) => {
      onMessage(event.data);
      if (event.data.type === 'refreshed') for (const resolve of this.waiting) resolve(event.data);
    };
  }

  exclusive<T>(task: (waitedSince: number) => Promise<T>): Promise<T> {
    const waitedSince = Date.now();
    return this.locks.request(this.name, () => task(waitedSince));
  }

  /**
   * A refresh is also recorded as a lock named after its time, asked for while the refresh lock is still
   * held. The lock manager orders one tab's requests, so the next tab to hold the refresh lock finds the
   * marker in `query()`, even when the channel's message (or a `localStorage` write, which other tabs see
   * late as well) has not reached it yet.
   */
  announce(message: TabMessage): void {
    if (message.type === 'refreshed') {
      this.locks
        .request(
          `${this.markerPrefix}${Date.now()}`,
          () => new Promise<void>((resolve) => setTimeout(resolve, MARKER_HOLD_MS)),
        )
        // Refused only for a page being unloaded, whose tabs' next refresh then waits for no message.
        .catch(() => undefined);
    }
    this.channel.postMessage(message);
  }

  nextRefresh(timeoutMs: number): Promise<TabMessage | undefined> {
    return new Promise((resolve) => {
      const done = (message?: TabMessage) => {
        clearTimeout(timer);
        this.waiting.delete(done);
        resolve(message);
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiting.add(done);
    });
  }

  async lastRefreshAnnounced(): Promise<number> {
    const { held = [], pending = [] } = await this.locks.query();
    let last = 0;
    for (const { name } of [...held, ...pending]) {
      if (name?.startsWith(this.markerPrefix))
        last = Math.max(last, Number(name.slice(this.markerPrefix.length)));
    }
    return last;
  }

  close(): void {
    this.channel.close();
  }
}

/** No other tabs to coordinate with: calls of this client queue behind one another. */
class LoneTab implements Tabs {
  private tail: Promise<unknown> = Promise.resolve();

  exclusive<T>(task: (waitedSince: number) => Promise<T>): Promise<T> {
    const waitedSince = Date.now();
    const run = this.tail.then(() => task(waitedSince));
    this.tail = run.catch(() => undefined);
    return run;
  }

  announce(): void {}

  nextRefresh(): Promise<TabMessage | undefined> {
    return Promise.resolve(undefined);
  }

  lastRefreshAnnounced(): Promise<number> {
    return Promise.resolve(0);
  }

  close(): void {}
}
