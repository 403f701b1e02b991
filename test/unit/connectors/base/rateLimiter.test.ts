import { KeyedRateLimiter } from '../../../../src/connectors/base';

/** Max calls seen in any window of `intervalMs` that starts at a call. */
function maxInWindow(stamps: number[], intervalMs: number): number {
  const sorted = [...stamps].sort((a, b) => a - b);
  let max = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (j < sorted.length && (sorted[j] as number) < (sorted[i] as number) + intervalMs) j++;
    max = Math.max(max, j - i);
  }
  return max;
}

describe('KeyedRateLimiter: the window (fake clock, exact)', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('never lets more than `limit` calls through in any window, and serves them in order', async () => {
    const limiter = new KeyedRateLimiter({ limit: 5, intervalMs: 1000, now: () => Date.now() });
    const stamps: number[] = [];
    const order: number[] = [];
    const start = Date.now();
    const all = Promise.all(
      Array.from({ length: 23 }, (_, i) =>
        limiter.schedule('portal-1', async () => {
          stamps.push(Date.now());
          order.push(i);
        }),
      ),
    );
    await jest.advanceTimersByTimeAsync(10_000);
    await all;
    expect(order).toEqual(Array.from({ length: 23 }, (_, i) => i));
    expect(maxInWindow(stamps, 1000)).toBe(5);
    for (let i = 0; i + 5 < stamps.length; i++) expect((stamps[i + 5] as number) - (stamps[i] as number)).toBeGreaterThanOrEqual(1000);
    // and it is not needlessly slow: 23 calls at 5 per second take 4 windows
    expect((stamps[22] as number) - start).toBe(4000);
  });

  it('counts waits and time waited', async () => {
    const limiter = new KeyedRateLimiter({ limit: 1, intervalMs: 100, now: () => Date.now() });
    const all = Promise.all([0, 1, 2].map(() => limiter.schedule('k', async () => undefined)));
    await jest.advanceTimersByTimeAsync(1000);
    await all;
    expect(limiter.stats()).toMatchObject({ granted: 3, waits: 2, waitedMs: 100 + 200, queued: 0 });
  });
});

describe('KeyedRateLimiter: real time', () => {
  it('holds the limit under real timers, measured from inside the calls', async () => {
    const limiter = new KeyedRateLimiter({ limit: 4, intervalMs: 150 });
    const stamps: number[] = [];
    await Promise.all(Array.from({ length: 14 }, () => limiter.schedule('a', async () => void stamps.push(performance.now()))));
    // fn stamps itself a little after the limiter's grant, and a GC pause can make one lag longer than
    // another, so measure over a slightly shorter window. A real overrun lets a fifth call in with the
    // burst, tens of ms early; the fake-clock test above checks the exact boundary.
    expect(maxInWindow(stamps, 150 - 10)).toBeLessThanOrEqual(4);
    expect(stamps.length).toBe(14);
  });

  it('never blocks one key on another', async () => {
    const limiter = new KeyedRateLimiter({ limit: 1, intervalMs: 60_000 });
    await limiter.acquire('busy');
    const ac = new AbortController();
    const queued = [limiter.acquire('busy', ac.signal), limiter.acquire('busy', ac.signal)];
    const t0 = performance.now();
    await limiter.acquire('other');
    await limiter.acquire('third');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(limiter.stats().queued).toBe(2);
    ac.abort(new Error('done'));
    await expect(Promise.allSettled(queued)).resolves.toEqual([expect.objectContaining({ status: 'rejected' }), expect.objectContaining({ status: 'rejected' })]);
  });

  it('pauses a key after penalize() and leaves other keys alone', async () => {
    const limiter = new KeyedRateLimiter({ limit: 100, intervalMs: 1000 });
    const t0 = performance.now();
    limiter.penalize('throttled', 250);
    await limiter.acquire('fine');
    const tFine = performance.now();
    await limiter.acquire('throttled');
    const tThrottled = performance.now();
    expect(tFine - t0).toBeLessThan(250);
    expect(tThrottled - t0).toBeGreaterThanOrEqual(250);
    expect(limiter.stats().penalties).toBe(1);
  });

  it('a penalty extends but never shortens a pause', async () => {
    const limiter = new KeyedRateLimiter({ limit: 100, intervalMs: 1000 });
    const t0 = performance.now();
    limiter.penalize('k', 150);
    limiter.penalize('k', 10);
    await limiter.acquire('k');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
  });
});

describe('KeyedRateLimiter: concurrency and abort', () => {
  it('caps calls in flight per key with maxConcurrent', async () => {
    const limiter = new KeyedRateLimiter({ limit: 1000, intervalMs: 1000, maxConcurrent: 2 });
    let inFlight = 0;
    let peak = 0;
    const slow = () =>
      limiter.schedule('mailbox', async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
      });
    const runs = Array.from({ length: 6 }, slow);
    // another mailbox is not held up by this one's full slots
    await expect(limiter.schedule('other-mailbox', async () => inFlight)).resolves.toBe(2);
    await Promise.all(runs);
    expect(peak).toBe(2);
  });

  it('releases the slot when fn throws', async () => {
    const limiter = new KeyedRateLimiter({ limit: 1000, intervalMs: 1000, maxConcurrent: 1 });
    await expect(limiter.schedule('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(limiter.schedule('k', async () => 'next')).resolves.toBe('next');
  });

  it('an abort while queued rejects, gives up the place, and the queue moves on', async () => {
    jest.useFakeTimers();
    try {
      const limiter = new KeyedRateLimiter({ limit: 1, intervalMs: 1000, now: () => Date.now() });
      await limiter.acquire('k');
      const ac = new AbortController();
      const aborted = limiter.acquire('k', ac.signal);
      const next = limiter.acquire('k');
      ac.abort(new Error('caller gone'));
      await expect(aborted).rejects.toThrow('caller gone');
      expect(limiter.stats().queued).toBe(1);
      await jest.advanceTimersByTimeAsync(1000);
      await expect(next).resolves.toEqual(expect.any(Function));
      expect(limiter.stats().granted).toBe(2);
    } finally {
      jest.useRealTimers();
    }
  });

  it('rejects at once with an already-aborted signal', async () => {
    const limiter = new KeyedRateLimiter({ limit: 1, intervalMs: 1000 });
    const ac = new AbortController();
    ac.abort(new Error('late'));
    await expect(limiter.acquire('k', ac.signal)).rejects.toThrow('late');
    expect(limiter.stats().granted).toBe(0);
  });
});

describe('KeyedRateLimiter: memory', () => {
  it('evicts idle keys once their window has passed, so many distinct keys do not accumulate', async () => {
    let now = 0;
    const limiter = new KeyedRateLimiter({ limit: 3, intervalMs: 1000, now: () => now });
    let peak = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 1000; i++) await limiter.acquire(`token-${round}-${i}`);
      peak = Math.max(peak, limiter.stats().keys);
      now += 1000;
    }
    // only the keys of the current and the previous interval can still be held
    expect(peak).toBeLessThanOrEqual(2000);
    expect(limiter.stats().granted).toBe(50_000);
    now += 1000;
    await limiter.acquire('last');
    expect(limiter.stats().keys).toBe(1);
  });

  it('keeps a key whose window still constrains it, and a paused key', async () => {
    let now = 0;
    const limiter = new KeyedRateLimiter({ limit: 1, intervalMs: 1000, now: () => now });
    await limiter.acquire('recent');
    limiter.penalize('paused', 10_000);
    now = 999;
    await limiter.acquire('x');
    now = 1000; // sweep runs; 'recent' granted at 0 has just left its window, 'paused' has not
    await limiter.acquire('y');
    const keys = limiter.stats().keys;
    expect(keys).toBe(3); // paused, x (granted at 999), y
  });

  it('validates its options', () => {
    expect(() => new KeyedRateLimiter({ limit: 0, intervalMs: 1000 })).toThrow(RangeError);
    expect(() => new KeyedRateLimiter({ limit: 1.5, intervalMs: 1000 })).toThrow(RangeError);
    expect(() => new KeyedRateLimiter({ limit: 1, intervalMs: 0 })).toThrow(RangeError);
    expect(() => new KeyedRateLimiter({ limit: 1, intervalMs: 10, maxConcurrent: 0 })).toThrow(RangeError);
  });
});
