/** The most events in any rolling window of `windowMs` (an event at t counts in (t − windowMs, t]). */
export function maxInWindow(times: readonly number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let max = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while ((t[j] as number) <= (t[i] as number) - windowMs) j++;
    max = Math.max(max, i - j + 1);
  }
  return max;
}
