/** A call of a running app's provider held in flight until the test releases it. */
export interface HeldCall {
  /** Resolves once the call has been made (the request holding it is past its guards). */
  entered: Promise<void>;
  release(): void;
}

/**
 * Holds the next call of `method` on `target` (a provider taken from a running app with `app.get`) until
 * released, then lets it run as usual; later calls are not held. Keeps a request in flight across a state
 * change without any sleep.
 */
export function holdNextCall<T extends object>(target: T, method: keyof T & string): HeldCall {
  const host = target as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = host[method];
  const hadOwn = Object.prototype.hasOwnProperty.call(target, method);
  let markEntered!: () => void;
  let release!: () => void;
  const entered = new Promise<void>((resolve) => (markEntered = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  host[method] = async (...args: unknown[]) => {
    if (hadOwn) host[method] = original;
    else delete host[method];
    markEntered();
    await released;
    return original.apply(target, args);
  };
  return { entered, release };
}
