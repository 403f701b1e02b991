import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QueueClient } from '@azure/storage-queue';
import { startAzurite, type AzuriteInstance } from '../../../runner/azurite';
import type { CoreApiState, Registration, RpcTypedData } from '../../../runner/coreApi';
import type { HostSettings } from '../../../runner/hostConfig';
import { Invoker, type InvocationResult } from '../../../runner/invoker';
import { QueuePoller } from '../../../runner/queues';

const NO_CORE: CoreApiState = {
  registrations: [],
  hooks: new Map(),
  programmingModel() {
    throw new Error('not used: invoke is replaced');
  },
  logSink: () => undefined,
};

/** An invoker whose function does `fn` instead of running app code. */
class StubInvoker extends Invoker {
  constructor(private readonly fn: () => Promise<void>) {
    super(NO_CORE, () => undefined);
  }
  override async invoke(_reg: Registration, _input: { triggerBindingName: string; data: RpcTypedData }): Promise<InvocationResult> {
    await this.fn();
    return { outputData: [], invocationId: 'stub', durationMs: 0 };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('QueuePoller when storage goes away', () => {
  let dir: string;
  let azurite: AzuriteInstance;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'itil-poller-'));
    azurite = await startAzurite({ location: dir });
  });
  afterEach(async () => {
    await azurite.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a message on its last attempt that cannot be moved to poison (storage down) is logged and kept, and the poller carries on', async () => {
    const queueName = 'probe';
    const queue = new QueueClient(azurite.connectionString.replace(/;$/, ''), queueName);
    const poison = new QueueClient(azurite.connectionString.replace(/;$/, ''), `${queueName}-poison`);
    await queue.createIfNotExists();
    await queue.sendMessage(Buffer.from('{"n":1}').toString('base64'));

    const settings: HostSettings = {
      routePrefix: 'api',
      // The message stays invisible this long after a receive whose settling failed.
      functionTimeoutMs: 3_000,
      queues: { maxPollingIntervalMs: 200, visibilityTimeoutMs: 0, batchSize: 1, newBatchThreshold: 0, maxDequeueCount: 1, messageEncoding: 'base64' },
    };
    const logs: string[] = [];
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    let calls = 0;
    // The function fails because storage went away under it: its one (and last) attempt.
    const invoker = new StubInvoker(async () => {
      calls++;
      await azurite.stop();
      throw new Error('storage is gone');
    });
    const reg: Registration = { metadata: { name: 'probe', bindings: {} }, handler: () => undefined };
    const poller = new QueuePoller(reg, 'message', queueName, azurite.connectionString, settings, invoker, (level, message) => logs.push(`[${level}] ${message}`), async () => undefined);
    try {
      await poller.start();
      const deadline = Date.now() + 90_000;
      while (!logs.some((l) => /could not be settled/.test(l)) && Date.now() < deadline) await sleep(200);
      expect(logs.filter((l) => /could not be settled/.test(l))).toEqual([expect.stringMatching(/^\[error\] queue probe: message .* could not be settled/)]);
      expect(calls).toBe(1);

      // Storage is back: the poller is still polling, and the message, which was never deleted, reaches
      // poison once its invisibility runs out (its dequeue count is past the limit), without a second run.
      await azurite.restart();
      let moved: string[] = [];
      while (moved.length === 0 && Date.now() < deadline) {
        await sleep(300);
        moved = (await poison.peekMessages().catch(() => ({ peekedMessageItems: [] }))).peekedMessageItems.map((m) => Buffer.from(m.messageText, 'base64').toString('utf8'));
      }
      expect(moved).toEqual(['{"n":1}']);
      expect(calls).toBe(1);
      expect((await queue.peekMessages()).peekedMessageItems).toEqual([]);
      expect(rejections).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
      await poller.stop();
    }
  }, 120_000);
});
