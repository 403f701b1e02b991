import net from 'node:net';
import { TableServiceClient } from '@azure/data-tables';
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
});
