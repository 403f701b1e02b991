import { appendFileSync } from 'node:fs';
import { QueueServiceClient, type DequeuedMessageItem, type QueueClient } from '@azure/storage-queue';
import type { RpcTypedData, Registration } from './coreApi';
import type { HostSettings } from './hostConfig';
import type { InvocationResult, Invoker } from './invoker';

export interface QueueLog {
  (level: 'info' | 'warn' | 'error', message: string): void;
}

/** Resolves a binding's `connection` setting the way the host does: `<name>` or `AzureWebJobs<name>`. */
export function storageConnectionString(connection: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const name = connection && connection.length > 0 ? connection : 'AzureWebJobsStorage';
  const value = env[name] ?? env[`AzureWebJobs${name}`];
  if (!value) throw new Error(`Storage connection setting "${name}" is not set.`);
  return value;
}

const clients = new Map<string, QueueServiceClient>();
export function queueService(connectionString: string): QueueServiceClient {
  let c = clients.get(connectionString);
  if (!c) {
    c = QueueServiceClient.fromConnectionString(connectionString);
    clients.set(connectionString, c);
  }
  return c;
}

export function encodeMessage(text: string, encoding: 'base64' | 'none'): string {
  return encoding === 'base64' ? Buffer.from(text, 'utf8').toString('base64') : text;
}

/** Decodes as the queue extension does; base64 that does not round-trip is a decode failure. */
export function decodeMessage(text: string, encoding: 'base64' | 'none'): string {
  if (encoding === 'none') return text;
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) {
    throw new Error('Message is not valid base64; set host.json extensions.queues.messageEncoding to match how messages are sent.');
  }
  return Buffer.from(compact, 'base64').toString('utf8');
}

/** Texts of the messages an output binding value stands for (an array means one message each). */
export function outputMessages(data: RpcTypedData): string[] {
  if ('string' in data) return [data.string];
  if ('bytes' in data) return [Buffer.from(data.bytes).toString('utf8')];
  if ('json' in data) {
    const parsed: unknown = JSON.parse(data.json);
    if (Array.isArray(parsed)) return parsed.map((m) => (typeof m === 'string' ? m : JSON.stringify(m)));
    return [data.json];
  }
  return [];
}

/**
 * Tests only: with `RUNNER_QUEUE_TAP_FILE` set, every message a queue trigger receives is appended there
 * (one JSON line), so the end-to-end secret scan sees messages the workers consumed. Off by default.
 */
function tapMessage(queue: string, text: string): void {
  const file = process.env.RUNNER_QUEUE_TAP_FILE;
  if (file) appendFileSync(file, JSON.stringify({ queue, text }) + '\n');
}

/**
 * Polls one queue for one queue-triggered function with the storage extension's semantics: batches of
 * `batchSize`, a new batch when in-flight work drops to `newBatchThreshold`, polling that backs off to
 * `maxPollingInterval` when idle, messages invisible while they run, a failed message made visible again
 * after `visibilityTimeout`, and moved to `<queue>-poison` once its dequeue count reaches
 * `maxDequeueCount`.
 */
export class QueuePoller {
  private stopped = false;
  private inFlight = new Set<Promise<void>>();
  private readonly queue: QueueClient;
  private readonly poison: QueueClient;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly reg: Registration,
    private readonly triggerBindingName: string,
    private readonly queueName: string,
    connectionString: string,
    private readonly settings: HostSettings,
    private readonly invoker: Invoker,
    private readonly log: QueueLog,
    private readonly onOutputs: (result: InvocationResult) => Promise<void>,
  ) {
    const service = queueService(connectionString);
    this.queue = service.getQueueClient(queueName);
    this.poison = service.getQueueClient(`${queueName}-poison`);
  }

  async start(): Promise<void> {
    await this.queue.createIfNotExists();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
  }

  private async run(): Promise<void> {
    const q = this.settings.queues;
    let delay = 100;
    while (!this.stopped) {
      let received: DequeuedMessageItem[] = [];
      if (this.inFlight.size <= q.newBatchThreshold) {
        try {
          const res = await this.queue.receiveMessages({
            numberOfMessages: q.batchSize,
            // Invisible for the whole function timeout while running, as the extension does (it renews).
            visibilityTimeout: Math.min(Math.ceil(this.settings.functionTimeoutMs / 1000), 7 * 24 * 3600),
          });
          received = res.receivedMessageItems;
        } catch (err) {
          if (!this.stopped) this.log('warn', `queue ${this.queueName}: receive failed: ${(err as Error).message}`);
        }
      }
      for (const msg of received) {
        // `process` turns a failing function into a retry; what it cannot absorb is storage failing under
        // its own bookkeeping (moving a message to poison during an outage). Left alone, that rejection
        // is unhandled and ends the whole runner process. The host logs it and carries on: the message
        // was not deleted, so it comes back when its invisibility runs out (and goes to poison then).
        const p = this.process(msg)
          .catch((err: unknown) => this.log('error', `queue ${this.queueName}: message ${msg.messageId} could not be settled; it is retried when it becomes visible again: ${err instanceof Error ? err.message : String(err)}`))
          .finally(() => this.inFlight.delete(p));
        this.inFlight.add(p);
      }
      if (received.length > 0) {
        delay = 100;
        continue;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      delay = Math.min(delay * 2, q.maxPollingIntervalMs);
    }
  }

  private async process(msg: DequeuedMessageItem): Promise<void> {
    const q = this.settings.queues;
    // A message that already used its attempts (a crash mid-run) goes straight to poison.
    if (msg.dequeueCount > q.maxDequeueCount) {
      await this.moveToPoison(msg, 'dequeue count exceeded before processing');
      return;
    }
    try {
      const text = decodeMessage(msg.messageText, q.messageEncoding);
      tapMessage(this.queueName, text);
      const result = await this.invoker.invoke(this.reg, {
        triggerBindingName: this.triggerBindingName,
        data: { string: text },
        triggerMetadata: {
          Id: { string: msg.messageId },
          PopReceipt: { string: msg.popReceipt },
          DequeueCount: { json: String(msg.dequeueCount) },
          InsertionTime: { string: msg.insertedOn.toISOString() },
          ExpirationTime: { string: msg.expiresOn.toISOString() },
          NextVisibleTime: { string: msg.nextVisibleOn.toISOString() },
          QueueTrigger: { string: text },
        },
      });
      await this.onOutputs(result);
      await this.queue.deleteMessage(msg.messageId, msg.popReceipt);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (msg.dequeueCount >= q.maxDequeueCount) {
        this.log('error', `${this.reg.metadata.name}: message ${msg.messageId} failed ${msg.dequeueCount} times; moving to ${this.queueName}-poison. Last error: ${reason}`);
        await this.moveToPoison(msg, reason);
      } else {
        this.log('warn', `${this.reg.metadata.name}: message ${msg.messageId} failed (attempt ${msg.dequeueCount} of ${q.maxDequeueCount}): ${reason}`);
        await this.queue
          .updateMessage(msg.messageId, msg.popReceipt, undefined, Math.ceil(q.visibilityTimeoutMs / 1000))
          .catch((e: Error) => this.log('warn', `could not release message ${msg.messageId}: ${e.message}`));
      }
    }
  }

  private async moveToPoison(msg: DequeuedMessageItem, _reason: string): Promise<void> {
    await this.poison.createIfNotExists();
    // The original text, unchanged, as the extension copies it.
    await this.poison.sendMessage(msg.messageText);
    await this.queue.deleteMessage(msg.messageId, msg.popReceipt);
  }
}
