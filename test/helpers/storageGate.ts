import { TableClient } from '@azure/data-tables';
import { StorageClients } from '../../src/storage/clients';
import type { TableName } from '../../src/storage/names';

/**
 * Storage clients for Azurite whose table requests can be held back on the wire: a test makes two
 * writes land in the order it needs (the SDK sends the request only when its gate opens), instead of
 * hoping a busy machine produces that order. Nothing else about the requests changes.
 */
type PipelinePolicy = NonNullable<NonNullable<Parameters<typeof TableClient.fromConnectionString>[2]>['additionalPolicies']>[number]['policy'];
type PipelineRequest = Parameters<PipelinePolicy['sendRequest']>[0];

export interface TableGate {
  /** Which requests to hold: tested against `"<METHOD> <url>\n<body>"` (a transaction's body lists its entities). */
  match(text: string): boolean;
  /** Sends the held request once this resolves. */
  openWhen: Promise<unknown>;
  /** Resolved with the request's text when one is first held. */
  held: Promise<string>;
}

export interface GatedStorage {
  clients: StorageClients;
  /** Holds the first matching request until `openWhen` resolves. */
  gate(match: (text: string) => boolean, openWhen: Promise<unknown>): TableGate;
  /** Resolves once a matching request has been answered (any status), with its text. */
  answered(match: (text: string) => boolean): Promise<string>;
}

function describe(request: PipelineRequest): string {
  const body = typeof request.body === 'string' ? request.body : '';
  return `${request.method} ${request.url}\n${body}`;
}

export function gatedStorage(connectionString: string): GatedStorage {
  const gates: Array<{ match: (text: string) => boolean; openWhen: Promise<unknown>; hold: (text: string) => void; used: boolean }> = [];
  const watchers: Array<{ match: (text: string) => boolean; done: (text: string) => void; used: boolean }> = [];
  const policy: PipelinePolicy = {
    name: 'testGate',
    async sendRequest(request, next) {
      const text = describe(request);
      const gate = gates.find((g) => !g.used && g.match(text));
      if (gate) {
        gate.used = true;
        gate.hold(text);
        await gate.openWhen;
      }
      try {
        return await next(request);
      } finally {
        for (const w of watchers) {
          if (!w.used && w.match(text)) {
            w.used = true;
            w.done(text);
          }
        }
      }
    },
  };

  class GatedClients extends StorageClients {
    readonly #tables = new Map<string, TableClient>();
    override table(name: TableName): TableClient {
      let client = this.#tables.get(name);
      if (!client) {
        client = TableClient.fromConnectionString(connectionString, name, { allowInsecureConnection: true, additionalPolicies: [{ policy, position: 'perCall' }] });
        this.#tables.set(name, client);
      }
      return client;
    }
  }

  return {
    clients: new GatedClients({ kind: 'connectionString', connectionString }),
    gate(match, openWhen) {
      let hold!: (text: string) => void;
      const held = new Promise<string>((r) => (hold = r));
      gates.push({ match, openWhen, hold, used: false });
      return { match, openWhen, held };
    },
    answered(match) {
      return new Promise<string>((done) => watchers.push({ match, done, used: false }));
    },
  };
}
