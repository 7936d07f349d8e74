import { WorkQueue } from './work-queue';

describe('WorkQueue', () => {
  it('never runs more than its limit at once, and runs every task in arrival order', async () => {
    const queue = new WorkQueue(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const task = (id: number) => async (): Promise<number> => {
      started.push(id);
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running -= 1;
      return id;
    };
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((id) => queue.run(task(id))));
    expect(results).toEqual([1, 2, 3, 4, 5, 6]);
    expect(peak).toBe(2);
    expect(started).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('frees the slot of a task that fails', async () => {
    const queue = new WorkQueue(1);
    await expect(queue.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(queue.run(() => Promise.resolve('next'))).resolves.toBe('next');
  });
});

describe('WorkQueue bounds', () => {
  const held = () => {
    let release!: () => void;
    const promise = new Promise<void>((resolve) => (release = resolve));
    return { promise, release };
  };

  it('refuses with 503 and Retry-After a task that would wait longer than the bound', async () => {
    const queue = new WorkQueue(1, 1000, 400);
    const gate = held();
    const running = queue.run(() => gate.promise);
    const waiting = [queue.run(() => Promise.resolve(1)), queue.run(() => Promise.resolve(2))];
    await expect(queue.run(() => Promise.resolve(3))).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      headers: { 'Retry-After': '2' },
    });
    gate.release();
    await running;
    await expect(Promise.all(waiting)).resolves.toEqual([1, 2]);
  });

  it('drops a waiting task whose signal aborts, without running it', async () => {
    const queue = new WorkQueue(1);
    const gate = held();
    const running = queue.run(() => gate.promise);
    const controller = new AbortController();
    let ran = false;
    const dropped = queue.run(() => {
      ran = true;
      return Promise.resolve();
    }, controller.signal);
    expect(queue.waitingCount).toBe(1);
    controller.abort();
    await expect(dropped).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(queue.waitingCount).toBe(0);
    gate.release();
    await running;
    await expect(queue.run(() => Promise.resolve('next'))).resolves.toBe('next');
    expect(ran).toBe(false);
  });
});
