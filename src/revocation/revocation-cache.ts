import { LRUCache } from 'lru-cache';

/** An invalidation naming this key drops every entry (too many keys for one message). */
export const EVERY_KEY = '*';

export type CacheLookup = 'hit' | 'miss' | 'bypass';

/**
 * Revocation state in process memory, trusted only while invalidations are known to arrive. Every
 * invalidation, loss and recovery moves the epoch; a read stores what it loaded only if the epoch has not
 * moved since the read began, so state loaded before a change can never be stored after the change's
 * invalidation has been handled.
 */
export class RevocationCache {
  private readonly entries: LRUCache<string, { value: unknown }>;
  private epoch = 0;
  private trusted = false;

  constructor(
    maxEntries: number,
    private readonly onLookup: (result: CacheLookup) => void = () => undefined,
  ) {
    this.entries = new LRUCache({ max: maxEntries });
  }

  get isTrusted(): boolean {
    return this.trusted;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached value of `key`, else what `load` returns (kept when nothing changed meanwhile). */
  async read<T>(key: string, load: () => Promise<T>): Promise<T> {
    if (!this.trusted) {
      this.onLookup('bypass');
      return load();
    }
    const hit = this.entries.get(key);
    if (hit) {
      this.onLookup('hit');
      return hit.value as T;
    }
    this.onLookup('miss');
    const epoch = this.epoch;
    const value = await load();
    if (this.trusted && epoch === this.epoch) this.entries.set(key, { value });
    return value;
  }

  forget(keys: readonly string[]): void {
    this.epoch += 1;
    if (keys.includes(EVERY_KEY)) this.entries.clear();
    else for (const key of keys) this.entries.delete(key);
  }

  /** Invalidations may have been missed: drop everything and read the database until trusted again. */
  distrust(): void {
    this.epoch += 1;
    this.trusted = false;
    this.entries.clear();
  }

  trust(): void {
    if (this.trusted) return;
    this.epoch += 1;
    this.entries.clear();
    this.trusted = true;
  }
}
