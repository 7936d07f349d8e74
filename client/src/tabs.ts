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
  /** When another tab announced a refresh last (epoch ms), whether or not its message arrived yet. */
  lastRefreshAnnounced(): number;
  close(): void;
}

interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}
interface ChannelLike {
  onmessage: ((event: { data: TabMessage }) => void) | null;
  postMessage(message: TabMessage): void;
  close(): void;
  /** Node's channels have it: one that is listened to must not keep the process alive by itself. */
  unref?(): void;
}
type ChannelConstructor = new (name: string) => ChannelLike;
interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export function tabsFor(name: string, onMessage: (message: TabMessage) => void): Tabs {
  // Typed by what is used of them, so that the client compiles against Node's types as well as the DOM's.
  const scope = globalThis as unknown as {
    navigator?: { locks?: LockManagerLike };
    BroadcastChannel?: ChannelConstructor;
    localStorage?: StorageLike;
  };
  const locks = scope.navigator?.locks;
  const Channel = scope.BroadcastChannel;
  if (locks && Channel) return new BrowserTabs(new Channel(name), name, locks, onMessage, storageOf(scope));
  return new LoneTab();
}

function storageOf(scope: { localStorage?: StorageLike }): StorageLike | undefined {
  try {
    return scope.localStorage;
  } catch {
    // Storage disabled by the browser's settings: refreshes still happen once, only messages may come late.
    return undefined;
  }
}

class BrowserTabs implements Tabs {
  private readonly waiting = new Set<(message: TabMessage) => void>();
  private readonly markerKey: string;

  constructor(
    private readonly channel: ChannelLike,
    private readonly name: string,
    private readonly locks: LockManagerLike,
    onMessage: (message: TabMessage) => void,
    private readonly storage: StorageLike | undefined,
  ) {
    this.markerKey = `${name}:refreshed-at`;
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

  announce(message: TabMessage): void {
    // Written before the lock is released: the next tab to hold it reads it even when the channel's message
    // has not reached it yet, and waits for that message rather than refreshing a second time.
    if (message.type === 'refreshed') this.write(String(Date.now()));
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

  lastRefreshAnnounced(): number {
    try {
      return Number(this.storage?.getItem(this.markerKey) ?? 0);
    } catch {
      return 0;
    }
  }

  close(): void {
    this.channel.close();
  }

  private write(value: string): void {
    try {
      this.storage?.setItem(this.markerKey, value);
    } catch {
      // Full or disabled storage: the message alone has to do.
    }
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

  lastRefreshAnnounced(): number {
    return 0;
  }

  close(): void {}
}
