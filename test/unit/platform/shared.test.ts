import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { InvocationContext } from '@azure/functions';
import { z } from 'zod';
import { EngineEventPublisher, cloudEventSchema } from '../../../src/platform/events';
import { InvalidSignedTokenError, SignedTokens } from '../../../src/platform/signedTokens';
import { queueHandler } from '../../../src/platform/workers';
import type { Services } from '../../../src/platform/services';
import { LocalSecretStore } from '../../../src/secrets/localSecretStore';
import { DeploymentState, EventDataBlobs, ProcessedStore, QueueSender, TABLES, TenantTable, tenantId, type DeploymentRow, type ProcessedRow, type StorageClients } from '../../../src/storage';
import { useAzurite } from '../../helpers/azurite';

let az: Awaited<ReturnType<typeof useAzurite>>;
let dir: string;
beforeAll(async () => {
  az = await useAzurite();
  dir = mkdtempSync(`${os.tmpdir()}/itil-shared-`);
});
afterAll(async () => {
  await az.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function drain(clients: StorageClients, queue: 'engine-events' | 'teams-cards-poison'): Promise<unknown[]> {
  const res = await clients.queue(queue).receiveMessages({ numberOfMessages: 32 });
  return res.receivedMessageItems.map((m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')));
}

describe('ProcessedStore', () => {
  it('claims an id once per source and tenant', async () => {
    const store = new ProcessedStore(new TenantTable<ProcessedRow>(az.clients.table(TABLES.processed)));
    const [a, b] = await Promise.all([store.claim('hubspot', tenantId('t1'), 'evt/1'), store.claim('hubspot', tenantId('t1'), 'evt/1')]);
    expect([a, b].sort()).toEqual([false, true]);
    expect(await store.claim('hubspot', tenantId('t2'), 'evt/1')).toBe(true);
    expect(await store.claim('graph', tenantId('t1'), 'evt/1')).toBe(true);
    await store.release('hubspot', tenantId('t1'), 'evt/1');
    expect(await store.claim('hubspot', tenantId('t1'), 'evt/1')).toBe(true);
  });

  it('a provisional claim is pending until confirmed, done after, and taken over once stale by exactly one caller', async () => {
    let clock = 1_000_000;
    const store = new ProcessedStore(new TenantTable<ProcessedRow>(az.clients.table(TABLES.processed)), () => clock);
    const t = tenantId('t-prov');
    const opts = { staleAfterMs: 60_000 };
    expect(await store.claimProvisional('hs', t, 'e1', opts)).toBe('claimed');
    expect(await store.claimProvisional('hs', t, 'e1', opts)).toBe('pending');
    await store.confirm('hs', t, ['e1']);
    clock += 120_000;
    expect(await store.claimProvisional('hs', t, 'e1', opts)).toBe('done');

    // A holder that died before confirming: young, the claim is still its own; stale, one retry takes it.
    expect(await store.claimProvisional('hs', t, 'e2', opts)).toBe('claimed');
    clock += 59_000;
    expect(await store.claimProvisional('hs', t, 'e2', opts)).toBe('pending');
    clock += 2_000;
    const racers = await Promise.all(Array.from({ length: 5 }, () => store.claimProvisional('hs', t, 'e2', opts)));
    expect(racers.filter((r) => r === 'claimed')).toHaveLength(1);
    expect(racers.filter((r) => r === 'pending')).toHaveLength(4);
    // The new holder's claim is young again.
    expect(await store.claimProvisional('hs', t, 'e2', opts)).toBe('pending');

    // Confirming is per tenant: another tenant's id of the same name is untouched.
    expect(await store.claimProvisional('hs', tenantId('t-other'), 'e3', opts)).toBe('claimed');
    await store.confirm('hs', t, ['e3']);
    clock += 61_000;
    expect(await store.claimProvisional('hs', tenantId('t-other'), 'e3', opts)).toBe('claimed');
    // A plain claim (no pending flag) counts as done.
    expect(await store.claim('hs', t, 'e4')).toBe(true);
    clock += 120_000;
    expect(await store.claimProvisional('hs', t, 'e4', opts)).toBe('done');
  });

  it("a provisional claim's owner takes it over at once; anyone else still waits for it to go stale", async () => {
    let clock = 5_000_000;
    const store = new ProcessedStore(new TenantTable<ProcessedRow>(az.clients.table(TABLES.processed)), () => clock);
    const t = tenantId('t-owner');
    const opts = { staleAfterMs: 60_000 };
    expect(await store.claimProvisional('hs', t, 'o1', { ...opts, owner: 'queue-msg-1' })).toBe('claimed');
    clock += 1_000;
    // Another delivery (another queue message, or none named) may be racing a live holder: it waits.
    expect(await store.claimProvisional('hs', t, 'o1', { ...opts, owner: 'queue-msg-2' })).toBe('pending');
    expect(await store.claimProvisional('hs', t, 'o1', opts)).toBe('pending');
    // The same queue message back again means its earlier invocation ended without confirming.
    expect(await store.claimProvisional('hs', t, 'o1', { ...opts, owner: 'queue-msg-1' })).toBe('claimed');
    await store.confirm('hs', t, ['o1']);
    expect(await store.claimProvisional('hs', t, 'o1', { ...opts, owner: 'queue-msg-1' })).toBe('done');
  });
});

describe('EngineEventPublisher', () => {
  it('publishes a CloudEvents 1.0 message with a stable id and the tenant as an extension attribute', async () => {
    const publisher = new EngineEventPublisher(new QueueSender(az.clients), new EventDataBlobs(az.clients));
    const input = {
      tenantId: tenantId('t1'),
      integrationId: 'i1',
      name: 'ticket.create_requested',
      connector: 'msgraph',
      subject: 'conversations/abc',
      idParts: ['message-1'],
      data: { subject: 'Printer on fire' },
      dataSchema: z.object({ subject: z.string() }),
    };
    const first = await publisher.publish(input);
    const again = await publisher.publish({ ...input, time: new Date(Date.now() + 60_000) });
    expect(again.id).toBe(first.id);
    const other = publisher.build({ ...input, tenantId: tenantId('t2') });
    expect(other.id).not.toBe(first.id);
    const [m1, m2] = await drain(az.clients, 'engine-events');
    expect(cloudEventSchema.parse(m1)).toMatchObject({
      specversion: '1.0',
      type: 'com.itil-next.connectors.ticket.create_requested.v1',
      source: '/connectors/msgraph/tenants/t1',
      tenantid: 't1',
      datacontenttype: 'application/json',
      data: { subject: 'Printer on fire' },
    });
    expect(Object.keys(m1 as object)).not.toContain('tenantId');
    expect((m2 as { id: string }).id).toBe(first.id);
    expect(() => publisher.build({ ...input, data: { subject: 42 } as unknown as { subject: string } })).toThrow();
  });
});

describe('SignedTokens', () => {
  const make = () =>
    new SignedTokens(
      new LocalSecretStore({ key: randomBytes(32), directory: dir, env: {} }),
      new ProcessedStore(new TenantTable<ProcessedRow>(az.clients.table(TABLES.processed))),
      new DeploymentState(new TenantTable<DeploymentRow>(az.clients.table(TABLES.deploymentState))),
    );

  it('verifies once when single-use, rejects reuse, another purpose, tampering and expiry', async () => {
    const tokens = make();
    const t = await tokens.sign('oauth-state', 't1', { integration_id: 'i1' }, 600);
    expect(await tokens.verify('oauth-state', t, { singleUse: true })).toMatchObject({ tenant_id: 't1', integration_id: 'i1', purpose: 'oauth-state' });
    await expect(tokens.verify('oauth-state', t, { singleUse: true })).rejects.toMatchObject({ reason: 'used' });
    const t2 = await tokens.sign('snooze', 't1', {}, 600);
    await expect(tokens.verify('oauth-state', t2, { singleUse: false })).rejects.toMatchObject({ reason: 'wrong_purpose' });
    const tampered = t2.slice(0, -3) + (t2.endsWith('AAA') ? 'BBB' : 'AAA');
    await expect(tokens.verify('snooze', tampered, { singleUse: false })).rejects.toBeInstanceOf(InvalidSignedTokenError);
    const expired = await tokens.sign('snooze', 't1', {}, -10);
    await expect(tokens.verify('snooze', expired, { singleUse: false })).rejects.toMatchObject({ reason: 'expired' });
  });
});

describe('queueHandler', () => {
  const services = () => ({ config: { logLevel: 'info' }, storage: az.clients }) as unknown as Services;
  const ctx = (dequeueCount: number, logs: string[]) =>
    new InvocationContext({ functionName: 'worker', invocationId: 'inv', triggerMetadata: { dequeueCount }, logHandler: (_l, ...a) => logs.push(a.join(' ')) });

  it('validates the message, passes dequeueCount, and rethrows failures so the runtime retries', async () => {
    const logs: string[] = [];
    const seen: number[] = [];
    const h = queueHandler({ queue: 'teams-cards', schema: z.object({ tenantId: z.string(), n: z.number() }) }, async ({ message, dequeueCount }) => {
      seen.push(dequeueCount);
      if (message.n < 0) throw new Error('negative');
    }, services);
    await h({ tenantId: 't1', n: 1 }, ctx(2, logs));
    expect(seen).toEqual([2]);
    await expect(h({ tenantId: 't1', n: -1 }, ctx(1, logs))).rejects.toThrow('negative');
    expect(logs.some((l) => l.includes('"msg":"message failed"') && l.includes('"tenantId":"t1"'))).toBe(true);
  });

  it('moves a message that can never be valid straight to the poison queue', async () => {
    const logs: string[] = [];
    let called = false;
    const h = queueHandler({ queue: 'teams-cards', schema: z.object({ tenantId: z.string(), n: z.number() }) }, async () => {
      called = true;
    }, services);
    await h({ tenantId: 't1', n: 'nope' }, ctx(1, logs));
    expect(called).toBe(false);
    expect(await drain(az.clients, 'teams-cards-poison')).toEqual([{ tenantId: 't1', n: 'nope' }]);
  });
});
