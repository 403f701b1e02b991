import { randomUUID } from 'node:crypto';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import type { JsonSchema } from './openapi';

/**
 * A valid instance of a JSON schema from `openapi.json`, so a request gets past validation and reaches
 * the handler's own checks. Hand-written because the schemas use a small subset (objects, arrays,
 * anyOf/oneOf, enums, patterns, formats) and no maintained generator handles 2020-12 without pulling in
 * a large dependency. `overrides` name property values that must be real (a webhook URL of the fake
 * Teams, an access token the fake HubSpot knows); every result is checked with ajv, and a value that
 * cannot be made valid throws, so an operation that cannot be exercised fails its test.
 */
export function sampleFromSchema(schema: JsonSchema, overrides: Record<string, unknown> = {}): unknown {
  const value = sample(schema, overrides, '');
  const errors = validate(schema, value);
  if (errors) throw new Error(`generated body does not match its schema: ${errors}\n${JSON.stringify(value).slice(0, 500)}`);
  return value;
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

/** `undefined` when valid, else ajv's message. */
export function validate(schema: JsonSchema, value: unknown): string | undefined {
  const v = ajv.compile(schema);
  return v(value) ? undefined : ajv.errorsText(v.errors);
}

// Values that fit the patterns and formats our schemas use; tried in order before a generated string.
const STRING_CANDIDATES = ['a@example.com', 'example.com', '12345', 'abc', 'abc_def', 'a1b2c3d4e5f6g7h8i9j0k', '2026-01-01T00:00:00Z', randomUUID(), 'https://example.com/x'];

function sample(schema: JsonSchema, overrides: Record<string, unknown>, key: string): unknown {
  if (key && key in overrides) return overrides[key];
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum[0];
  if (schema.default !== undefined && !schema.type) return schema.default;
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) {
    // The first alternative that validates with the overrides applied (oneOf: first that is valid).
    for (const alt of alternatives) {
      const v = sample(alt, overrides, key);
      if (!validate(schema, v)) return v;
    }
    return sample(alternatives[0] as JsonSchema, overrides, key);
  }
  if (schema.allOf) return Object.assign({}, ...schema.allOf.map((s) => sample(s, overrides, key) as object));
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [name, prop] of Object.entries(schema.properties ?? {})) {
        // Required ones always; optional ones when an override names them (a real id to point at).
        if ((schema.required ?? []).includes(name) || name in overrides) out[name] = sample(prop, overrides, name);
      }
      return out;
    }
    case 'array': {
      const n = Math.max(schema.minItems ?? 1, 1);
      return Array.from({ length: n }, () => sample(schema.items ?? {}, overrides, ''));
    }
    case 'integer':
    case 'number':
      return Math.max(schema.minimum ?? 1, Math.min(schema.maximum ?? 1, 1));
    case 'boolean':
      return true;
    case 'string':
      return sampleString(schema);
    case 'null':
      return null;
    default:
      return 'x';
  }
}

function sampleString(schema: JsonSchema): string {
  const fits = (s: string) => s.length >= (schema.minLength ?? 0) && s.length <= (schema.maxLength ?? Infinity) && (!schema.pattern || new RegExp(schema.pattern, 'u').test(s)) && !validate({ type: 'string', ...(schema.format ? { format: schema.format } : {}) }, s);
  if (schema.format === 'email' && fits('a@example.com')) return 'a@example.com';
  if (schema.format === 'uuid') return randomUUID();
  if (schema.format === 'date-time') return new Date().toISOString();
  for (const c of STRING_CANDIDATES) if (fits(c)) return c;
  if (schema.pattern) {
    const generated = fc.sample(fc.stringMatching(new RegExp(schema.pattern)), { numRuns: 50, seed: 42 }).find(fits);
    if (generated !== undefined) return generated;
  }
  const padded = 'x'.repeat(Math.max(schema.minLength ?? 1, 1));
  if (fits(padded)) return padded;
  throw new Error(`cannot generate a string for ${JSON.stringify(schema)}`);
}
