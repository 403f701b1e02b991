import { SyncStateStore } from '../../../../src/connectors/hubspot';
import { newRun } from '../../../../src/connectors/hubspot/sync/engine';
import { addProgress, type TypeState } from '../../../../src/connectors/hubspot/sync/state';
import { integrationId, StorageClients, tenantId } from '../../../../src/storage';
import { useAzurite } from '../../../helpers/azurite';

/**
 * The run's counters under writers side by side: one chain per object type, each with its own store
 * and clients (as separate instances would have), against Azurite.
 */
describe('SyncState run counters', () => {
  let az: Awaited<ReturnType<typeof useAzurite>>;

  beforeAll(async () => {
    az = await useAzurite();
  });

  afterAll(async () => {
    await az?.stop();
  });

  const store = () => new SyncStateStore(new StorageClients({ kind: 'connectionString', connectionString: az.connectionString }));

  it('many concurrent checkpoints of three chains, and run-row writes with stale figures, are all counted', async () => {
    const t = tenantId('tenant-counters');
    const i = integrationId('int-1');
    const run = newRun({ syncId: 'sync-1', syncType: 'full' }, Date.now());
    await store().putRun(t, i, run);
    const pages = 40;
    const chain = async (type: 'tickets' | 'contacts' | 'companies', perPage: number) => {
      const mine = store();
      let st: TypeState = await mine.getType(t, i, type);
      for (let p = 1; p <= pages; p++) {
        st = addProgress({ ...st, fullSyncId: run.syncId, fullSeen: p * perPage }, run.syncId, { pages: 1, records: perPage, changes: p % 2 });
        // Every checkpoint also carries this chain's own (stale) view of the run row, as a racing writer would.
        await mine.checkpoint(t, i, type, st, { ...run, pages: p, records: p * perPage });
      }
    };
    const other = store();
    const staleWrites = (async () => {
      for (let n = 0; n < pages; n++) await other.putRun(t, i, { ...run, status: 'running', records: 0, pages: 0 });
    })();
    await Promise.all([chain('tickets', 100), chain('contacts', 7), chain('companies', 3), staleWrites]);

    const got = await store().getRun(t, i);
    expect(got?.run).toMatchObject({ syncId: 'sync-1', pages: 3 * pages, records: pages * (100 + 7 + 3), changes: 3 * (pages / 2) });
  });

  it("a new sync starts from zero: an older sync's shares are not counted, and another tenant sees none of them", async () => {
    const t = tenantId('tenant-fresh');
    const i = integrationId('int-1');
    const s = store();
    const old = addProgress(await s.getType(t, i, 'tickets'), 'sync-old', { pages: 5, records: 500, changes: 2 });
    await s.checkpoint(t, i, 'tickets', old, newRun({ syncId: 'sync-old', syncType: 'full' }, Date.now()));
    expect((await s.getRun(t, i))?.run).toMatchObject({ pages: 5, records: 500, changes: 2 });

    await s.putRun(t, i, newRun({ syncId: 'sync-new', syncType: 'incremental' }, Date.now()));
    expect((await s.getRun(t, i))?.run).toMatchObject({ syncId: 'sync-new', pages: 0, records: 0, changes: 0 });
    const next = addProgress(old, 'sync-new', { pages: 1, records: 3, changes: 1 });
    expect(next).toMatchObject({ progressSyncId: 'sync-new', progressPages: 1, progressRecords: 3, progressChanges: 1 });
    await s.checkpoint(t, i, 'tickets', next);
    expect((await s.getRun(t, i))?.run).toMatchObject({ syncId: 'sync-new', pages: 1, records: 3, changes: 1 });

    expect(await s.getRun(tenantId('tenant-other'), i)).toBeUndefined();
  });
});
