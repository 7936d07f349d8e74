import { EVERY_KEY, RevocationCache } from './revocation-cache';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => (resolve = done));
  return { promise, resolve };
}

function trustedCache(): RevocationCache {
  const cache = new RevocationCache(100);
  cache.trust();
  return cache;
}

describe('RevocationCache', () => {
  it('serves a second read from memory while trusted', async () => {
    const cache = trustedCache();
    const load = jest.fn().mockResolvedValue('live');
    expect(await cache.read('user:1', load)).toBe('live');
    expect(await cache.read('user:1', load)).toBe('live');
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('keeps an absent row (null) as well', async () => {
    const cache = trustedCache();
    const load = jest.fn().mockResolvedValue(null);
    await cache.read('user:gone', load);
    expect(await cache.read('user:gone', load)).toBeNull();
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('reads through and keeps nothing until trusted', async () => {
    const cache = new RevocationCache(100);
    const load = jest.fn().mockResolvedValue('live');
    await cache.read('user:1', load);
    await cache.read('user:1', load);
    expect(load).toHaveBeenCalledTimes(2);
    expect(cache.size).toBe(0);
  });

  it('never stores what a read loaded before an invalidation of that key arrived', async () => {
    const cache = trustedCache();
    const stale = deferred<string>();
    const racing = cache.read('user:1', () => stale.promise);
    cache.forget(['user:1']);
    stale.resolve('before revocation');
    expect(await racing).toBe('before revocation');
    expect(await cache.read('user:1', () => Promise.resolve('revoked'))).toBe('revoked');
  });

  it('never stores a read that began before an invalidation of another key (the epoch is global)', async () => {
    const cache = trustedCache();
    const stale = deferred<string>();
    const racing = cache.read('user:1', () => stale.promise);
    cache.forget(['family:9']);
    stale.resolve('old');
    await racing;
    expect(cache.size).toBe(0);
  });

  it('never stores a read that spanned a loss and recovery of the subscription', async () => {
    const cache = trustedCache();
    const stale = deferred<string>();
    const racing = cache.read('user:1', () => stale.promise);
    cache.distrust();
    cache.trust();
    stale.resolve('old');
    await racing;
    expect(await cache.read('user:1', () => Promise.resolve('fresh'))).toBe('fresh');
  });

  it('drops everything and reads the database while distrusted', async () => {
    const cache = trustedCache();
    await cache.read('user:1', () => Promise.resolve('old'));
    cache.distrust();
    expect(cache.size).toBe(0);
    expect(await cache.read('user:1', () => Promise.resolve('fresh'))).toBe('fresh');
    expect(cache.size).toBe(0);
  });

  it('forgets only the named keys, or everything for the wildcard', async () => {
    const cache = trustedCache();
    await cache.read('user:1', () => Promise.resolve('a'));
    await cache.read('user:2', () => Promise.resolve('b'));
    cache.forget(['user:1']);
    expect(cache.size).toBe(1);
    cache.forget([EVERY_KEY]);
    expect(cache.size).toBe(0);
  });

  it('counts hits, misses and bypasses', async () => {
    const seen: string[] = [];
    const cache = new RevocationCache(100, (result) => seen.push(result));
    await cache.read('k', () => Promise.resolve(1));
    cache.trust();
    await cache.read('k', () => Promise.resolve(1));
    await cache.read('k', () => Promise.resolve(1));
    expect(seen).toEqual(['bypass', 'miss', 'hit']);
  });
});
