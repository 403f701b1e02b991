import { z } from 'zod';
import { startFakeHubSpot, type FakeHubSpot } from '../../test/fakes/hubspot';
import { serve } from './ipc';

/** The fake HubSpot in a process of its own, driven by the benchmark over IPC. */

let fake: FakeHubSpot | undefined;
/** Each seeded portal's ticket ids, for `touch`. */
const ticketIds = new Map<number, string[]>();

const LOREM = 'Customer reports that the export to CSV stops at the first page; steps to reproduce attached, urgent for month-end. ';

function need(): FakeHubSpot {
  if (!fake) throw new Error('fake not started');
  return fake;
}

serve({
  async start(args) {
    const a = z.object({ perTenSeconds: z.number(), windowMs: z.number(), latencyMs: z.number().nonnegative().default(0) }).parse(args);
    fake = await startFakeHubSpot({ rateLimit: { perTenSeconds: a.perTenSeconds, windowMs: a.windowMs, searchPerSecond: 5 } });
    fake.recordArrivals();
    // A slower HubSpot: every CRM call waits this long before it is served (and counted in the window).
    if (a.latencyMs > 0) fake.injectFault({ match: /^\w+ \/crm\//, delayMs: a.latencyMs, times: Number.MAX_SAFE_INTEGER });
    return { url: fake.url };
  },
  async seedPortal(args) {
    const a = z.object({ tickets: z.number().int(), contacts: z.number().int(), companies: z.number().int() }).parse(args);
    const f = need();
    const portal = f.addPortal();
    f.setPipelines(portal.hubId, [{ id: '0', label: 'Support', stages: [{ id: '1', label: 'New', ticketState: 'OPEN' }, { id: '2', label: 'Waiting', ticketState: 'OPEN' }, { id: '4', label: 'Closed', ticketState: 'CLOSED' }] }]);
    const contacts = f.seed(portal.hubId, 'contacts', a.contacts);
    const companies = f.seed(portal.hubId, 'companies', a.companies);
    // Tickets with a few hundred characters of body and, for some, a contact and a company.
    // Last modified over an hour ago: an incremental after the full sync (its window starts a few minutes
    // before the full sync did) then finds only what `touch` changes.
    const old = Date.now() - 3_600_000 - a.tickets;
    const tickets = f.seed(portal.hubId, 'tickets', a.tickets, (i) => ({ content: `${LOREM}${LOREM}${i}`, hs_pipeline_stage: ['1', '2', '4'][i % 3] as string, hs_lastmodifieddate: String(old + i) }));
    ticketIds.set(portal.hubId, tickets);
    for (let i = 0; i < tickets.length; i += 10) f.associate(portal.hubId, 'tickets', tickets[i] as string, 'contacts', contacts[(i / 10) % contacts.length] as string);
    for (let i = 0; i < tickets.length; i += 20) f.associate(portal.hubId, 'tickets', tickets[i] as string, 'companies', companies[(i / 20) % companies.length] as string);
    return { hubId: portal.hubId, token: f.createPrivateAppToken(portal.hubId) };
  },
  /** Changes `count` tickets of a portal (the first ones seeded): new stage, new subject, new last-modified. */
  async touch(args) {
    const a = z.object({ hubId: z.number().int(), count: z.number().int().nonnegative() }).parse(args);
    const f = need();
    const ids = (ticketIds.get(a.hubId) ?? []).slice(0, a.count);
    for (const [x, id] of ids.entries()) f.upsertObject(a.hubId, 'tickets', id, { hs_pipeline_stage: '4', subject: `changed ${x}` });
    return { touched: ids.length };
  },
  async resetStats() {
    need().resetStats();
    return {};
  },
  async stats() {
    return need().stats();
  },
  async arrivals() {
    return { times: need().arrivals() };
  },
  async stop() {
    await fake?.close();
    setImmediate(() => process.exit(0));
    return {};
  },
});
