import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

type JsonObject = Record<string, unknown>;

interface AsyncApiDoc {
  components: { schemas: { CloudEvent: JsonObject }; messages: Record<string, { name: string; payload: { allOf: [unknown, JsonObject] } }> };
}

let validators: Map<string, ValidateFunction> | undefined;

/** One validator per event type, from the committed asyncapi.json (the contract the engine team reads). */
function contract(): Map<string, ValidateFunction> {
  if (validators) return validators;
  const doc = JSON.parse(readFileSync(path.resolve(__dirname, '..', '..', 'asyncapi.json'), 'utf8')) as AsyncApiDoc;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  validators = new Map();
  for (const message of Object.values(doc.components.messages)) {
    // The payload's first part is a $ref to the shared envelope; inline it so each schema stands alone.
    validators.set(message.name, ajv.compile({ allOf: [doc.components.schemas.CloudEvent, message.payload.allOf[1]] }));
  }
  return validators;
}

/**
 * Throws unless `event` (a parsed `engine-events` message) is one of the types asyncapi.json lists and matches
 * its schema. The suites call it on every event they read, so the document cannot drift from what is sent.
 */
export function assertEngineEvent(event: unknown): void {
  const type = (event as { type?: unknown } | null)?.type;
  const validate = typeof type === 'string' ? contract().get(type) : undefined;
  if (!validate) throw new Error(`engine event of type ${String(type)} is not in asyncapi.json`);
  if (!validate(event)) throw new Error(`engine event ${type} does not match asyncapi.json: ${JSON.stringify(validate.errors?.slice(0, 5))}`);
}
