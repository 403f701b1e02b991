import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TableClient, TableServiceClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { startAzurite } from '../../../runner/azurite';
import { freePort } from '../../helpers/runner';

/** npm start asks for Azurite's default ports; when one is taken it must still come up, elsewhere. */
describe('startAzurite', () => {
  it('falls back to free ports when a preferred port is taken, and serves tables there', async () => {
    const [blob, queue, table] = [await freePort(), await freePort(), await freePort()];
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(queue, '127.0.0.1', () => r()));
    const lines: string[] = [];
    const az = await startAzurite({ ports: { blob, queue, table }, log: (l) => lines.push(l) });
    try {
      expect(az.ports.queue).not.toBe(queue);
      expect(lines.join('\n')).toMatch(/using free ports instead/);
      const svc = TableServiceClient.fromConnectionString(az.connectionString, { allowInsecureConnection: true });
      await svc.createTable('Probe');
      const names: string[] = [];
      for await (const t of svc.listTables()) names.push(t.name as string);
      expect(names).toContain('Probe');
    } finally {
      await az.stop();
      await new Promise<void>((r) => squatter.close(() => r()));
    }
  });

  it('uses the preferred ports when they are free', async () => {
    const ports = { blob: await freePort(), queue: await freePort(), table: await freePort() };
    const az = await startAzurite({ ports });
    try {
      expect(az.ports).toEqual(ports);
      expect(az.connectionString).toContain(`TableEndpoint=http://127.0.0.1:${ports.table}/devstoreaccount1`);
    } finally {
      await az.stop();
    }
  });

  it('restarts on the same ports with its data when it has a location; a port taken meanwhile is an error, not other ports', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'itil-azurite-restart-'));
    const az = await startAzurite({ location: dir });
    const squatter = net.createServer();
    try {
      const before = { ...az.ports };
      const table = TableClient.fromConnectionString(az.connectionString, 'Kept', { allowInsecureConnection: true });
      await table.createTable();
      await table.createEntity({ partitionKey: 'p', rowKey: 'r', value: 'before the restart' });
      const queue = new QueueClient(az.connectionString.replace(/;$/, ''), 'kept');
      await queue.createIfNotExists();
      await queue.sendMessage('still here');

      await az.stop();
      await expect(table.getEntity('p', 'r', { requestOptions: { timeout: 2_000 } })).rejects.toThrow();
      await az.restart();
      expect(az.ports).toEqual(before);
      // The clients made before the outage work again, and nothing written before it is gone.
      expect((await table.getEntity<{ value: string }>('p', 'r')).value).toBe('before the restart');
      expect((await queue.peekMessages()).peekedMessageItems.map((m) => m.messageText)).toEqual(['still here']);

      await az.stop();
      await new Promise<void>((r) => squatter.listen(before.queue, '127.0.0.1', () => r()));
      await expect(az.restart()).rejects.toThrow(/port is taken/);
    } finally {
      await az.stop();
      await new Promise<void>((r) => (squatter.listening ? squatter.close(() => r()) : r()));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
