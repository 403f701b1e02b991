import type { Client } from '@microsoft/microsoft-graph-client';
import { z } from 'zod';
import { graphCode, graphStatus } from './errors';
import { pathSegment } from './messages';
import { collectPages } from './paging';

const deltaItemSchema = z
  .object({
    id: z.string().min(1),
    receivedDateTime: z.string().nullish(),
    '@removed': z.unknown().optional(),
  })
  .loose();

export interface DeltaResult {
  /** Ids (immutable) of messages that arrived since the last run, oldest page first. */
  messageIds: string[];
  /** What to store for the next run: a delta link, or a next link when paging stopped early. */
  link: string;
  complete: boolean;
  /** The stored link had expired and the sync restarted from `since`. */
  restarted: boolean;
}

const PAGE_SIZE = 50;

/** A delta link that Outlook no longer knows: restart with a full (time-bounded) sync. */
export function isExpiredDelta(err: unknown): boolean {
  const status = graphStatus(err);
  const code = (graphCode(err) ?? '').toLowerCase();
  return status === 410 || code === 'syncstatenotfound' || code === 'syncstateinvalid' || code === 'resyncrequired';
}

export function initialDeltaRequest(client: Client, userId: string, since: Date) {
  // Query options go on the first call only; later calls replay the whole link Graph handed out.
  return client
    .api(`/users/${pathSegment(userId)}/mailFolders('inbox')/messages/delta`)
    .query({ changeType: 'created' })
    .select('id,receivedDateTime')
    .filter(`receivedDateTime ge ${since.toISOString().replace(/\.\d{3}Z$/, 'Z')}`);
}

/**
 * New messages in a mailbox's inbox since the stored link (or since `since` on the first run or after
 * the link expired). The backstop that makes a lost notification never lose an email.
 */
export async function inboxDelta(client: Client, input: { userId: string; link: string | undefined; since: Date; maxPages?: number }): Promise<DeltaResult> {
  const headers = { Prefer: `odata.maxpagesize=${PAGE_SIZE}` };
  const run = async (first: ReturnType<typeof initialDeltaRequest>, restarted: boolean): Promise<DeltaResult> => {
    const res = await collectPages(client, first, deltaItemSchema, { headers, maxPages: input.maxPages ?? 50 });
    const messageIds = res.items.filter((i) => i['@removed'] === undefined).map((i) => i.id);
    if (res.deltaLink) return { messageIds, link: res.deltaLink, complete: true, restarted };
    return { messageIds, link: res.nextLink as string, complete: false, restarted };
  };
  if (input.link) {
    try {
      return await run(client.api(input.link), false);
    } catch (err) {
      if (!isExpiredDelta(err)) throw err;
    }
    return run(initialDeltaRequest(client, input.userId, input.since), true);
  }
  return run(initialDeltaRequest(client, input.userId, input.since), false);
}
