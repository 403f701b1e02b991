import { Client } from '@hubspot/api-client';
import { startFakeHubSpotProcess, type RemoteFakeHubSpot } from '../../fakes/hubspot';

/** The fake in its own process (needs the compiled dist/, as the end-to-end tests do). */

describe('fake HubSpot in a child process', () => {
  let fake: RemoteFakeHubSpot;

  beforeAll(async () => {
    fake = await startFakeHubSpotProcess({ rateLimit: { perTenSeconds: 50, windowMs: 60_000 } });
  });

  afterAll(async () => {
    await fake.close();
  });

  it('serves seeded tickets to the SDK and reports stats and its own memory', async () => {
    expect(fake.pid).not.toBe(process.pid);
    const portal = await fake.addPortal();
    expect(await fake.seed(portal.hubId, 'tickets', 250, { subject: 'Remote {i}', hs_ticket_priority: 'HIGH' })).toBe(250);
    const token = await fake.createPrivateAppToken(portal.hubId);
    const all = await new Client({ accessToken: token, basePath: fake.url }).crm.tickets.getAll(100, undefined, ['subject', 'hs_ticket_priority']);
    expect(all).toHaveLength(250);
    expect(all[3]?.properties.subject).toBe('Remote 3');
    const s = await fake.stats();
    expect(s.requests).toBe(3);
    expect(s.byRoute['GET /crm/v3/objects/tickets']).toBe(3);
    expect((await fake.memoryUsage()).rss).toBeGreaterThan(0);
    await fake.injectFault({ match: /tickets/, status: 500 });
    const res = await fetch(`${fake.url}/crm/v3/objects/tickets`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(500);
    await expect(fake.archiveObject(portal.hubId, 'tickets', '1')).rejects.toThrow(/not found/);
  });
});
