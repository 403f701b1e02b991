import { RetryAfterTooLongError, defaultClassify, parseRetryAfter, withRetry, type RetryOptions } from '../../../../src/connectors/base';

/** An HTTP-ish error as our clients throw them. */
function httpError(status: number, headers: Record<string, string> = {}): Error & { status: number; headers: Record<string, string> } {
  return Object.assign(new Error(`HTTP ${status}`), { status, headers });
}

function codeError(code: string): Error & { code: string } {
  return Object.assign(new Error(code), { code });
}

/** Fails with the given errors in turn, then succeeds with 'ok'. */
function failing(...errors: unknown[]): jest.Mock<Promise<string>, []> {
  let i = 0;
  return jest.fn(async () => {
    if (i < errors.length) throw errors[i++];
    return 'ok';
  });
}

/** A sleep that records and advances a fake clock instead of waiting. */
function fakeTime(start = 1_700_000_000_000) {
  const t = { now: start, sleeps: [] as number[] };
  const opts: Pick<RetryOptions, 'sleep' | 'now'> = {
    now: () => t.now,
    sleep: async (ms: number) => {
      t.sleeps.push(ms);
      t.now += ms;
    },
  };
  return { t, opts };
}

describe('withRetry: backoff', () => {
  it('uses full jitter: each wait is random * min(cap, base * 2^n)', async () => {
    const { t, opts } = fakeTime();
    const randoms = [0.5, 0.999, 0, 0.25, 0.999];
    const fn = failing(httpError(503), httpError(503), httpError(503), httpError(503), httpError(503));
    await expect(
      withRetry(fn, { idempotent: true, maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 1000, maxElapsedMs: 1e9, random: () => randoms.shift() as number, ...opts }),
    ).resolves.toBe('ok');
    // ceilings 100, 200, 400, 800, then capped at 1000
    expect(t.sleeps).toEqual([50, 199.8, 0, 200, 999]);
    expect(fn).toHaveBeenCalledTimes(6);
  });

  it('never exceeds the ceiling of its attempt, whatever random returns', async () => {
    for (let run = 0; run < 50; run++) {
      const { t, opts } = fakeTime();
      const fn = failing(...Array.from({ length: 7 }, () => httpError(500)));
      await withRetry(fn, { idempotent: true, maxAttempts: 8, baseDelayMs: 10, maxDelayMs: 300, maxElapsedMs: 1e9, ...opts });
      t.sleeps.forEach((ms, n) => {
        expect(ms).toBeGreaterThanOrEqual(0);
        expect(ms).toBeLessThanOrEqual(Math.min(300, 10 * 2 ** n));
      });
    }
  });

  it('rethrows the last error once attempts run out', async () => {
    const { opts } = fakeTime();
    const last = httpError(502);
    const fn = failing(httpError(503), httpError(500), last, httpError(503));
    await expect(withRetry(fn, { idempotent: true, maxAttempts: 3, ...opts })).rejects.toBe(last);
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it('reports each retry with attempt, delay and reason', async () => {
    const { opts } = fakeTime();
    const onRetry = jest.fn();
    const rateLimited = httpError(429, { 'Retry-After': '2' });
    const reset = codeError('ECONNRESET');
    await withRetry(failing(rateLimited, reset, httpError(503)), { idempotent: true, random: () => 0, onRetry, ...opts });
    expect(onRetry.mock.calls).toEqual([
      [1, 2000, 'rate-limited', rateLimited],
      [2, 0, 'network', reset],
      [3, 0, 'server-error', expect.objectContaining({ status: 503 })],
    ]);
  });
});

describe('withRetry: what is retried', () => {
  it('does not retry a non-idempotent call, even on a retryable error', async () => {
    const { t, opts } = fakeTime();
    const err = httpError(503);
    const fn = failing(err);
    await expect(withRetry(fn, { idempotent: false, ...opts })).rejects.toBe(err);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(t.sleeps).toEqual([]);
  });

  it.each([400, 401, 403, 404, 409, 422, 501])('does not retry HTTP %i', async (status) => {
    const { opts } = fakeTime();
    const err = httpError(status);
    const fn = failing(err);
    await expect(withRetry(fn, { idempotent: true, ...opts })).rejects.toBe(err);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it.each([408, 429, 500, 502, 503, 504])('retries HTTP %i', async (status) => {
    const { opts } = fakeTime();
    const fn = failing(httpError(status));
    await expect(withRetry(fn, { idempotent: true, ...opts })).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('does not retry errors it cannot read (more likely a bug than a blip)', async () => {
    const { opts } = fakeTime();
    const fn = failing(new TypeError('cannot read properties of undefined'));
    await expect(withRetry(fn, { idempotent: true, ...opts })).rejects.toBeInstanceOf(TypeError);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('lets a custom classifier decide', async () => {
    const { t, opts } = fakeTime();
    const locked = httpError(423);
    const fn = failing(locked);
    const classify = (err: unknown) => (err === locked ? { retryable: true, retryAfterMs: 2000, reason: 'locked' } : defaultClassify(err));
    const onRetry = jest.fn();
    await expect(withRetry(fn, { idempotent: true, classify, onRetry, random: () => 0, ...opts })).resolves.toBe('ok');
    expect(t.sleeps).toEqual([2000]);
    expect(onRetry).toHaveBeenCalledWith(1, 2000, 'locked', locked);
  });
});

describe('defaultClassify', () => {
  it.each(['ECONNRESET', 'ETIMEDOUT', 'ECONNREFUSED', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT'])('retries network code %s', (code) => {
    expect(defaultClassify(codeError(code)).retryable).toBe(true);
  });

  it("looks through fetch's TypeError('fetch failed') to its cause", () => {
    const err = new TypeError('fetch failed', { cause: codeError('UND_ERR_SOCKET') });
    expect(defaultClassify(err)).toEqual({ retryable: true, reason: 'network' });
  });

  it('retries an attempt timeout from AbortSignal.timeout()', () => {
    expect(defaultClassify(new DOMException('timed out', 'TimeoutError'))).toEqual({ retryable: true, reason: 'timeout' });
  });

  it('does not retry undici argument errors', () => {
    expect(defaultClassify(codeError('UND_ERR_INVALID_ARG')).retryable).toBe(false);
  });

  it("reads HubSpot's ApiException (numeric code, headers) and fetch Response-style errors", () => {
    const hubspot = Object.assign(new Error('HTTP-Code: 429'), { code: 429, body: { policyName: 'TEN_SECONDLY_ROLLING' }, headers: { 'retry-after': '10' } });
    expect(defaultClassify(hubspot)).toEqual({ retryable: true, retryAfterMs: 10_000, reason: 'rate-limited' });
    const wrapped = Object.assign(new Error('failed'), { response: { status: 503, headers: new Headers({ 'Retry-After': '1' }) } });
    expect(defaultClassify(wrapped)).toEqual({ retryable: true, retryAfterMs: 1000, reason: 'server-error' });
    const azure = Object.assign(new Error('throttled'), { statusCode: 429, code: 'TooManyRequests', response: { headers: { 'x-ms-retry-after-ms': '1500' } } });
    expect(defaultClassify(azure)).toEqual({ retryable: true, retryAfterMs: 1500, reason: 'rate-limited' });
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2026, 0, 15, 12, 0, 0);

  it('reads delay-seconds', () => {
    expect(parseRetryAfter({ 'retry-after': '120' }, now)).toBe(120_000);
    expect(parseRetryAfter({ 'Retry-After': ' 0 ' }, now)).toBe(0);
  });

  it('reads an HTTP-date, and a past date means now', () => {
    expect(parseRetryAfter({ 'retry-after': new Date(now + 5_000).toUTCString() }, now)).toBe(5_000);
    expect(parseRetryAfter({ 'retry-after': 'Thu, 15 Jan 2026 12:01:00 GMT' }, now)).toBe(60_000);
    expect(parseRetryAfter({ 'retry-after': new Date(now - 60_000).toUTCString() }, now)).toBe(0);
    expect(parseRetryAfter({ 'retry-after': 'Thursday, 15-Jan-26 12:00:30 GMT' }, now)).toBe(30_000);
    expect(parseRetryAfter({ 'retry-after': 'Thu Jan 15 12:00:10 2026' }, now)).toBe(10_000);
  });

  it('prefers the millisecond headers', () => {
    expect(parseRetryAfter({ 'retry-after': '3', 'retry-after-ms': '250' }, now)).toBe(250);
    expect(parseRetryAfter({ 'Retry-After': '3', 'x-ms-retry-after-ms': '1500' }, now)).toBe(1500);
  });

  it('reads fetch Headers and Node array values', () => {
    expect(parseRetryAfter(new Headers({ 'Retry-After': '7' }), now)).toBe(7000);
    expect(parseRetryAfter({ 'retry-after': ['4', '9'] }, now)).toBe(4000);
  });

  it('returns undefined for nothing or nonsense', () => {
    expect(parseRetryAfter({}, now)).toBeUndefined();
    expect(parseRetryAfter({ 'retry-after': 'soon' }, now)).toBeUndefined();
    expect(parseRetryAfter({ 'retry-after': '-5' }, now)).toBeUndefined();
    expect(parseRetryAfter({ 'retry-after': '' }, now)).toBeUndefined();
  });
});

describe('withRetry: server-requested waits', () => {
  it('waits at least Retry-After seconds even when the jitter draws less', async () => {
    const { t, opts } = fakeTime();
    await withRetry(failing(httpError(429, { 'Retry-After': '3' })), { idempotent: true, random: () => 0, ...opts });
    expect(t.sleeps).toEqual([3000]);
  });

  it('keeps the jitter when it is longer than what the server asked', async () => {
    const { t, opts } = fakeTime();
    await withRetry(failing(httpError(503), httpError(503), httpError(503, { 'retry-after': '1' })), {
      idempotent: true,
      baseDelayMs: 1000,
      maxDelayMs: 10_000,
      random: () => 0.5,
      ...opts,
    });
    // third wait: jitter 0.5 * 4000 = 2000 beats the server's 1000
    expect(t.sleeps).toEqual([500, 1000, 2000]);
  });

  it('honours an HTTP-date Retry-After against the injected clock', async () => {
    const { t, opts } = fakeTime(Date.UTC(2026, 0, 15, 12, 0, 0));
    await withRetry(failing(httpError(503, { 'Retry-After': 'Thu, 15 Jan 2026 12:00:04 GMT' })), { idempotent: true, random: () => 0, ...opts });
    expect(t.sleeps).toEqual([4000]);
  });

  it('honours retry-after-ms', async () => {
    const { t, opts } = fakeTime();
    await withRetry(failing(httpError(503, { 'retry-after-ms': '1234' })), { idempotent: true, random: () => 0, ...opts });
    expect(t.sleeps).toEqual([1234]);
  });

  it('gives up with RetryAfterTooLongError instead of sleeping past the single-wait cap', async () => {
    const { t, opts } = fakeTime();
    const err = httpError(429, { 'Retry-After': '3600' });
    const fn = failing(err);
    const thrown = await withRetry(fn, { idempotent: true, maxDelayMs: 20_000, ...opts }).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(RetryAfterTooLongError);
    const tooLong = thrown as RetryAfterTooLongError;
    expect(tooLong.retryAfterMs).toBe(3_600_000);
    expect(tooLong.allowedMs).toBe(20_000);
    expect(tooLong.retryAt).toBe(t.now + 3_600_000);
    expect(tooLong.attempts).toBe(1);
    expect(tooLong.cause).toBe(err);
    expect(tooLong.headers['Retry-After']).toBe('3600');
    expect(fn).toHaveBeenCalledTimes(1);
    expect(t.sleeps).toEqual([]);
  });

  it('gives up with RetryAfterTooLongError when the wait would overrun the elapsed budget', async () => {
    const { t, opts } = fakeTime();
    const fn = jest.fn(async () => {
      t.now += 8_000; // a slow attempt eats most of the budget
      throw httpError(503, { 'Retry-After': '5' });
    });
    const thrown = await withRetry(fn, { idempotent: true, maxElapsedMs: 10_000, maxDelayMs: 20_000, ...opts }).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(RetryAfterTooLongError);
    expect((thrown as RetryAfterTooLongError).allowedMs).toBe(2_000);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('shortens its own backoff to the budget left, then stops with the last error', async () => {
    const { t, opts } = fakeTime();
    const errors: Error[] = [];
    const fn = jest.fn(async () => {
      t.now += 400;
      const e = httpError(503);
      errors.push(e);
      throw e;
    });
    const thrown = await withRetry(fn, { idempotent: true, maxAttempts: 10, baseDelayMs: 1000, maxDelayMs: 5000, maxElapsedMs: 1000, random: () => 0.99, ...opts }).catch(
      (e: unknown) => e,
    );
    // attempt 1 ends at 400 ms; backoff 990 shortened to the 600 left; attempt 2 ends at 1400: over budget
    expect(t.sleeps).toEqual([600]);
    expect(fn).toHaveBeenCalledTimes(2);
    expect(thrown).toBe(errors[1]);
  });
});

describe('withRetry: abort', () => {
  it('does not start when the signal is already aborted', async () => {
    const fn = jest.fn(async () => 'ok');
    const ac = new AbortController();
    ac.abort(new Error('cancelled'));
    await expect(withRetry(fn, { idempotent: true, signal: ac.signal })).rejects.toThrow('cancelled');
    expect(fn).not.toHaveBeenCalled();
  });

  it('ends a wait at once, even when the injected sleep ignores the signal', async () => {
    const ac = new AbortController();
    const fn = failing(httpError(503), httpError(503));
    const neverEnding = () => new Promise<void>(() => undefined);
    const p = withRetry(fn, { idempotent: true, signal: ac.signal, sleep: neverEnding, onRetry: () => queueMicrotask(() => ac.abort(new Error('shutdown'))) });
    await expect(p).rejects.toThrow('shutdown');
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('aborts the real default sleep promptly', async () => {
    const ac = new AbortController();
    const started = Date.now();
    const p = withRetry(failing(httpError(429, { 'Retry-After': '10' })), { idempotent: true, signal: ac.signal, random: () => 0 });
    setTimeout(() => ac.abort(new Error('timeout')), 20);
    await expect(p).rejects.toThrow('timeout');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('reports the abort, not the error fn threw because of it, and does not retry', async () => {
    const ac = new AbortController();
    const fn = jest.fn(async ({ signal }: { signal: AbortSignal | undefined }) => {
      ac.abort(new Error('caller gave up'));
      signal?.throwIfAborted();
      return 'unreachable';
    });
    await expect(withRetry(fn, { idempotent: true, signal: ac.signal })).rejects.toThrow('caller gave up');
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('hands the signal and the attempt number to fn', async () => {
    const ac = new AbortController();
    const seen: Array<[number, AbortSignal | undefined]> = [];
    const { opts } = fakeTime();
    let calls = 0;
    await withRetry(
      async ({ attempt, signal }) => {
        seen.push([attempt, signal]);
        if (++calls < 3) throw httpError(503);
        return 'ok';
      },
      { idempotent: true, signal: ac.signal, ...opts },
    );
    expect(seen).toEqual([
      [1, ac.signal],
      [2, ac.signal],
      [3, ac.signal],
    ]);
  });
});
