import { AppError } from './app-error';

interface Waiter {
  start: () => void;
}

/** How much the running average of task durations moves towards each new one. */
const AVERAGE_WEIGHT = 0.2;

/**
 * Runs at most `limit` tasks at once; the others wait their turn in arrival order. The wait is bounded: a
 * task that would wait longer than `maxWaitMs` (the waiting tasks times the average duration, over the
 * limit) is refused with 503 and `Retry-After` at once, and a waiting task whose signal aborts (its client
 * went away) leaves the queue without running.
 */
export class WorkQueue {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  private averageMs: number;

  constructor(
    readonly limit: number,
    private readonly maxWaitMs = Number.POSITIVE_INFINITY,
    initialAverageMs = 0,
  ) {
    this.averageMs = initialAverageMs;
  }

  /** Tasks waiting for a slot. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /** Seeds (or corrects) the duration estimate, e.g. from a task timed at start. */
  observe(durationMs: number): void {
    this.averageMs =
      this.averageMs === 0 ? durationMs : this.averageMs + AVERAGE_WEIGHT * (durationMs - this.averageMs);
  }

  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw clientGone();
    if (this.running < this.limit) this.running += 1;
    else await this.wait(signal);
    const started = performance.now();
    try {
      return await task();
    } finally {
      this.observe(performance.now() - started);
      // A finishing task hands its slot straight to the first waiter, so `running` stays counted.
      const next = this.waiting.shift();
      if (next) next.start();
      else this.running -= 1;
    }
  }

  private wait(signal: AbortSignal | undefined): Promise<void> {
    const expectedMs = ((this.waiting.length + 1) * this.averageMs) / this.limit;
    if (expectedMs > this.maxWaitMs) {
      const seconds = Math.max(1, Math.ceil(expectedMs / 1000));
      throw new AppError('SERVICE_UNAVAILABLE', 'The service is busy; try again shortly', undefined, {
        'Retry-After': String(seconds),
      });
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(clientGone());
      };
      const waiter: Waiter = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.waiting.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Nobody reads this answer: the client closed the connection before its task's turn. */
function clientGone(): AppError {
  return new AppError('SERVICE_UNAVAILABLE', 'The client went away');
}
