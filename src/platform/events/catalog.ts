import type { z } from 'zod';

/**
 * One kind of event the connectors send the engine: its name and version (together the CloudEvents `type`,
 * `com.itil-next.connectors.<name>.v<version>`), the zod schema its `data` is validated with, and the words
 * `asyncapi.json` shows the engine team. Connectors declare theirs in an `eventCatalog.ts`; publishing takes
 * an entry, so no event leaves that the contract does not describe.
 */
export interface EventDefinition<T = unknown> {
  name: string;
  version: number;
  connector: string;
  summary: string;
  /** When the event is sent and what the engine is expected to do with it. */
  description: string;
  schema: z.ZodType<T>;
}

export function defineEvent<T>(def: EventDefinition<T>): EventDefinition<T> {
  const words = def.name.split('.');
  if (words.length < 2 || !words.every((w) => /^[a-z0-9_]+$/.test(w))) throw new Error(`event name ${def.name} must be dotted lower-case words`);
  if (!Number.isInteger(def.version) || def.version < 1) throw new Error(`event ${def.name}: version must be a positive integer`);
  return def;
}
