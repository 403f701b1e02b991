import type { Client, GraphRequest } from '@microsoft/microsoft-graph-client';
import { z } from 'zod';

const pageSchema = z
  .object({
    value: z.array(z.unknown()),
    '@odata.nextLink': z.string().optional(),
    '@odata.deltaLink': z.string().optional(),
  })
  .loose();

export interface PageResult<T> {
  items: T[];
  /** Set when the last page handed a delta link (delta queries). */
  deltaLink?: string;
  /** Set when paging stopped at `maxPages` with more to read: resume from here. */
  nextLink?: string;
}

/**
 * Follows `@odata.nextLink` as Graph hands it (the whole URL, never rebuilt) until the last page.
 * Headers such as `ConsistencyLevel` are not carried to the next page by Graph, so every page gets
 * them again. The mail API has returned the same nextLink twice (GDC#7004): a repeat ends the loop.
 */
export async function collectPages<T>(
  client: Client,
  first: GraphRequest,
  itemSchema: z.ZodType<T>,
  opts: { headers?: Record<string, string>; maxPages?: number; signal?: AbortSignal } = {},
): Promise<PageResult<T>> {
  const items: T[] = [];
  const seen = new Set<string>();
  const maxPages = opts.maxPages ?? 100;
  let request: GraphRequest = opts.headers ? first.headers(opts.headers) : first;
  for (let page = 1; ; page++) {
    opts.signal?.throwIfAborted();
    const body = pageSchema.parse(await request.get());
    for (const raw of body.value) {
      const parsed = itemSchema.safeParse(raw);
      if (parsed.success) items.push(parsed.data);
    }
    const next = body['@odata.nextLink'];
    if (!next) return { items, ...(body['@odata.deltaLink'] ? { deltaLink: body['@odata.deltaLink'] } : {}) };
    if (seen.has(next)) throw new Error('Graph returned the same nextLink twice; stopping to avoid a loop');
    seen.add(next);
    if (page >= maxPages) return { items, nextLink: next };
    request = client.api(next);
    if (opts.headers) request = request.headers(opts.headers);
  }
}
