import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import draft06 from 'ajv/dist/refs/json-schema-draft-06.json';
import { loadOfficialSchema } from './officialSchema';

// adaptivecards 3.0.6's ESM build does not load under Node; its UMD bundle does (graph-teams.md §7).
const AC = require('adaptivecards/dist/adaptivecards.js') as typeof import('adaptivecards');

export const MAX_WEBHOOK_BYTES = 28 * 1024;

let validator: ValidateFunction | null | undefined;

function schemaValidator(): ValidateFunction | null {
  if (validator !== undefined) return validator;
  const official = loadOfficialSchema();
  if (!official) return (validator = null);
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addMetaSchema(draft06);
  addFormats(ajv);
  // The file names its id with draft-04's `id`, which Ajv 8 refuses; it is the same as draft-06's `$id`.
  const { id, ...rest } = official.schema;
  validator = ajv.compile({ ...rest, $id: String(id) });
  return validator;
}

export function officialSchemaAvailable(): boolean {
  return schemaValidator() !== null;
}

/** Official 1.5 schema errors for a card; `msteams` is stripped first (the schema forbids extra root properties). */
export function schemaErrors(card: unknown): string[] | null {
  const validate = schemaValidator();
  if (!validate) return null;
  const stripped = card && typeof card === 'object' ? { ...(card as Record<string, unknown>) } : card;
  if (stripped && typeof stripped === 'object') delete (stripped as Record<string, unknown>).msteams;
  if (validate(stripped)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

/** What the official `adaptivecards` parser reports while parsing the card (unknown elements, bad values, …). */
export function parserErrors(card: unknown): string[] {
  const ac = new AC.AdaptiveCard();
  const ctx = new AC.SerializationContext();
  ac.parse(card as object, ctx);
  const out: string[] = [];
  for (let i = 0; i < ctx.eventCount; i++) out.push(ctx.getEventAt(i).message);
  for (const e of ac.validateProperties().validationEvents) out.push(e.message);
  return out;
}

function walk(node: unknown, visit: (o: Record<string, unknown>) => void): void {
  if (Array.isArray(node)) node.forEach((n) => walk(n, visit));
  else if (node && typeof node === 'object') {
    visit(node as Record<string, unknown>);
    Object.values(node as Record<string, unknown>).forEach((v) => walk(v, visit));
  }
}

/** All text a mention may sit in: TextBlock text and FactSet titles and values. */
export function cardTexts(card: unknown): string[] {
  const texts: string[] = [];
  walk(card, (o) => {
    if (o.type === 'TextBlock' && typeof o.text === 'string') texts.push(o.text);
    if (o.type === 'FactSet' && Array.isArray(o.facts)) {
      for (const f of o.facts as Array<Record<string, unknown>>) {
        if (typeof f.title === 'string') texts.push(f.title);
        if (typeof f.value === 'string') texts.push(f.value);
      }
    }
  });
  return texts;
}

export interface EnvelopeCheck {
  errors: string[];
  card: Record<string, unknown> | undefined;
  schemaChecked: boolean;
}

/**
 * Everything Teams requires of a webhook body (graph-teams.md §6–7): the `message` envelope with one
 * Adaptive Card attachment, card version 1.5 at most, no `Action.Submit` (not supported from webhooks),
 * mentions whose `<at>` text appears in the card, plus the official schema and parser checks.
 */
export function checkEnvelope(body: unknown): EnvelopeCheck {
  const errors: string[] = [];
  const b = body as { type?: unknown; attachments?: unknown };
  if (!b || typeof b !== 'object') return { errors: ['body is not a JSON object'], card: undefined, schemaChecked: false };
  if (b.type !== 'message') errors.push('type must be "message"');
  if (!Array.isArray(b.attachments) || b.attachments.length !== 1) {
    errors.push('attachments must hold exactly one card');
    return { errors, card: undefined, schemaChecked: false };
  }
  const a = b.attachments[0] as { contentType?: unknown; contentUrl?: unknown; content?: unknown };
  if (a.contentType !== 'application/vnd.microsoft.card.adaptive') errors.push('attachment contentType must be application/vnd.microsoft.card.adaptive');
  if (a.contentUrl !== null && a.contentUrl !== undefined) errors.push('attachment contentUrl must be null');
  const card = a.content as Record<string, unknown> | undefined;
  if (!card || typeof card !== 'object') return { errors: [...errors, 'attachment has no card content'], card: undefined, schemaChecked: false };
  if (card.type !== 'AdaptiveCard') errors.push('content.type must be AdaptiveCard');
  if (typeof card.version !== 'string' || !/^1\.[0-5]$/.test(card.version)) errors.push('card version must be 1.0 to 1.5');
  walk(card, (o) => {
    if (o.type === 'Action.Submit') errors.push('Action.Submit is not supported in webhook cards');
  });
  const msteams = card.msteams as { entities?: Array<{ type?: unknown; text?: unknown; mentioned?: { id?: unknown; name?: unknown } }> } | undefined;
  const texts = cardTexts(card);
  for (const e of msteams?.entities ?? []) {
    if (e.type !== 'mention') continue;
    if (typeof e.text !== 'string' || !/^<at>.+<\/at>$/.test(e.text)) errors.push('mention text must be <at>…</at>');
    else if (!texts.some((t) => t.includes(e.text as string))) errors.push(`mention ${e.text} does not appear in the card`);
    if (typeof e.mentioned?.id !== 'string' || typeof e.mentioned?.name !== 'string') errors.push('mention needs mentioned.id and mentioned.name');
  }
  const schema = schemaErrors(card);
  if (schema) errors.push(...schema.map((s) => `schema: ${s}`));
  errors.push(...parserErrors(card).map((s) => `parser: ${s}`));
  return { errors, card, schemaChecked: schema !== null };
}
