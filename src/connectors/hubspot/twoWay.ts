import { z } from 'zod';
import type { IntegrationId, TenantId } from '../../storage';
import type { HubSpotCaller } from './caller';
import { recordVersion, type HubSpotRecordStore } from './records';
import { hubSpotObjectSchema, toHubSpotObject } from './sync/hubspotApi';

/** HubSpot's batch endpoints take at most 100 inputs. */
export const BATCH_WRITE_LIMIT = 100;
/** One request from the engine; larger pushes are split by the engine into several requests. */
export const MAX_PUSH_ITEMS = 500;

/** HUBSPOT_DEFINED association type ids (v4), from the ticket's side. */
export const ASSOCIATION_TYPES = {
  ticketToContact: 16,
  ticketToCompany: 339,
  ticketToCompanyPrimary: 26,
} as const;

const propertyValue = z.union([z.string().max(65_536), z.number(), z.boolean()]).transform(String);
const properties = z.record(z.string().regex(/^[a-z0-9_]{1,100}$/, 'HubSpot property names are lower-case letters, digits and "_"'), propertyValue).default({});

// Labels one at a time rather than one regex with a repeated group holding a quantifier (nested
// quantifiers are what `safe-regex2` rejects in `test/unit/security/regexes.test.ts`).
const DOMAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9]|)$/;
const TOP_LEVEL_LABEL = /^[a-z]{2,63}$/;
function isBareDomain(domain: string): boolean {
  if (domain.length < 1 || domain.length > 253) return false;
  const labels = domain.split('.');
  const top = labels.pop() as string;
  return labels.length > 0 && TOP_LEVEL_LABEL.test(top) && labels.every((l) => DOMAIN_LABEL.test(l));
}

export const contactPushSchema = z.object({ email: z.string().trim().toLowerCase().pipe(z.email()), properties });
export const companyPushSchema = z.object({
  domain: z
    .string()
    .trim()
    .toLowerCase()
    .max(253, 'a bare domain such as example.com')
    .refine(isBareDomain, 'a bare domain such as example.com')
    .meta({ description: 'A bare domain such as example.com: labels of a-z, 0-9 and inner "-" (1-63 each) separated by dots, ending in a top-level label of 2-63 letters; at most 253 characters.' }),
  properties,
});
export type ContactPush = z.infer<typeof contactPushSchema>;
export type CompanyPush = z.infer<typeof companyPushSchema>;

/** `{email, properties}` once, or `{contacts: [...]}`. */
export const contactsBodySchema = z.union([z.object({ contacts: z.array(contactPushSchema).min(1).max(MAX_PUSH_ITEMS) }), contactPushSchema.transform((c) => ({ contacts: [c] }))]);
export const companiesBodySchema = z.union([z.object({ companies: z.array(companyPushSchema).min(1).max(MAX_PUSH_ITEMS) }), companyPushSchema.transform((c) => ({ companies: [c] }))]);

export interface PushResult {
  key: string;
  id: string;
  created: boolean;
}

export interface PushOutcome {
  results: PushResult[];
  errors: Array<{ key: string; message: string }>;
}

const upsertResponseSchema = z.object({
  // The SDK deserialises HubSpot's `new` into `_new` (a reserved word in its generator).
  results: z.array(hubSpotObjectSchema.and(z.object({ new: z.boolean().optional(), _new: z.boolean().optional() }))),
  errors: z.array(z.object({ message: z.string().optional(), context: z.record(z.string(), z.unknown()).optional() })).optional(),
});

interface PushDeps {
  caller: HubSpotCaller;
  records: HubSpotRecordStore;
  tenantId: TenantId;
  integrationId: IntegrationId;
}

/**
 * Contacts from the engine → batch upsert by email (≤ 100 per call). Upsert by a unique property is
 * idempotent, so retries are safe. The version HubSpot returns is recorded as `lastPushedVersion`, so
 * the webhook (and sync) echo of this write is stored but not sent back to the engine.
 */
export async function upsertContacts(deps: PushDeps, contacts: ContactPush[]): Promise<PushOutcome> {
  return upsertBy(deps, 'contacts', 'email', dedupe(contacts, (c) => c.email).map((c) => ({ key: c.email, properties: { ...c.properties, email: c.email } })));
}

/**
 * Companies → batch upsert by domain. HubSpot's own `domain` is not a unique-value property in every
 * account; where it is not, the account needs a custom unique property (this follows the issue).
 */
export async function upsertCompanies(deps: PushDeps, companies: CompanyPush[]): Promise<PushOutcome> {
  return upsertBy(deps, 'companies', 'domain', dedupe(companies, (c) => c.domain).map((c) => ({ key: c.domain, properties: { ...c.properties, domain: c.domain } })));
}

async function upsertBy(deps: PushDeps, type: 'contacts' | 'companies', idProperty: 'email' | 'domain', items: Array<{ key: string; properties: Record<string, string> }>): Promise<PushOutcome> {
  const out: PushOutcome = { results: [], errors: [] };
  for (let k = 0; k < items.length; k += BATCH_WRITE_LIMIT) {
    const chunk = items.slice(k, k + BATCH_WRITE_LIMIT);
    const inputs = chunk.map((c) => ({ id: c.key, idProperty, properties: c.properties }));
    const raw: unknown = await deps.caller.call(
      'standard',
      `${type}.batch-upsert`,
      (client) => (type === 'contacts' ? client.crm.contacts.batchApi.upsert({ inputs }) : client.crm.companies.batchApi.upsert({ inputs })),
      { idempotent: true },
    );
    const parsed = upsertResponseSchema.parse(raw);
    const byKey = new Map<string, { id: string; created: boolean; version: string }>();
    for (const r of parsed.results) {
      const o = toHubSpotObject(type, r);
      const key = (o.properties[idProperty] ?? '').toLowerCase();
      byKey.set(key, { id: o.id, created: (r._new ?? r.new) === true, version: recordVersion(o.lastModifiedMs) });
    }
    await Promise.all(
      [...byKey.values()].map((v) => deps.records.setLastPushedVersion(deps.tenantId, deps.integrationId, type, v.id, v.version)),
    );
    for (const c of chunk) {
      const hit = byKey.get(c.key);
      if (hit) out.results.push({ key: c.key, id: hit.id, created: hit.created });
      else out.errors.push({ key: c.key, message: 'HubSpot did not return this record' });
    }
  }
  return out;
}

export const ticketCreateSchema = z.object({
  properties: properties.refine((p) => typeof p['subject'] === 'string' && typeof p['hs_pipeline_stage'] === 'string', {
    message: 'subject and hs_pipeline_stage are required (internal ids)',
  }),
  contactIds: z.array(z.string().regex(/^\d{1,20}$/)).max(100).default([]),
  companyIds: z.array(z.string().regex(/^\d{1,20}$/)).max(100).default([]),
});
export type TicketCreate = z.infer<typeof ticketCreateSchema>;

/**
 * A ticket created from our side, with its contacts and companies associated in the same call (v4
 * HUBSPOT_DEFINED types: ticket→contact 16; the first company primary 26, others 339). Not idempotent:
 * one attempt unless HubSpot provably refused it (429).
 */
export async function createTicket(deps: PushDeps, input: TicketCreate): Promise<{ id: string }> {
  const associations = [
    ...input.contactIds.map((id) => ({ to: { id }, types: [{ associationCategory: 'HUBSPOT_DEFINED' as const, associationTypeId: ASSOCIATION_TYPES.ticketToContact }] })),
    ...input.companyIds.map((id, n) => ({
      to: { id },
      types: [{ associationCategory: 'HUBSPOT_DEFINED' as const, associationTypeId: n === 0 ? ASSOCIATION_TYPES.ticketToCompanyPrimary : ASSOCIATION_TYPES.ticketToCompany }],
    })),
  ];
  const raw: unknown = await deps.caller.call(
    'standard',
    'tickets.create',
    // The SDK's enum type for associationCategory is nominal; the wire value is the string.
    (client) => client.crm.tickets.basicApi.create({ properties: input.properties, associations } as unknown as Parameters<typeof client.crm.tickets.basicApi.create>[0]),
    { idempotent: false },
  );
  const o = toHubSpotObject('tickets', hubSpotObjectSchema.parse(raw));
  await deps.records.setLastPushedVersion(deps.tenantId, deps.integrationId, 'tickets', o.id, recordVersion(o.lastModifiedMs));
  return { id: o.id };
}

function dedupe<T>(items: T[], key: (t: T) => string): T[] {
  const m = new Map<string, T>();
  for (const it of items) m.set(key(it), it);
  return [...m.values()];
}
