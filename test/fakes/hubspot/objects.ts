/** Facts about the CRM object types the fake serves: names, ids, default properties, association type ids. */

export type ObjectType = 'tickets' | 'contacts' | 'companies';

export interface ObjectTypeInfo {
  type: ObjectType;
  singular: string;
  objectTypeId: string;
  /** Contacts keep `lastmodifieddate`; tickets and companies `hs_lastmodifieddate`. */
  lastModifiedProperty: string;
  /** Returned by list/get/search when the request names no properties. */
  defaultProperties: string[];
  /** A property whose value identifies one object (batch upsert `idProperty`, create conflicts). */
  uniqueProperty?: string;
  scopes: { read: string[]; write: string[] };
}

export const OBJECT_TYPES: Record<ObjectType, ObjectTypeInfo> = {
  tickets: {
    type: 'tickets',
    singular: 'ticket',
    objectTypeId: '0-5',
    lastModifiedProperty: 'hs_lastmodifieddate',
    defaultProperties: ['content', 'createdate', 'hs_lastmodifieddate', 'hs_object_id', 'hs_pipeline', 'hs_pipeline_stage', 'hs_ticket_category', 'hs_ticket_priority', 'subject'],
    scopes: { read: ['tickets'], write: ['tickets'] },
  },
  contacts: {
    type: 'contacts',
    singular: 'contact',
    objectTypeId: '0-1',
    lastModifiedProperty: 'lastmodifieddate',
    defaultProperties: ['createdate', 'email', 'firstname', 'hs_object_id', 'lastmodifieddate', 'lastname'],
    uniqueProperty: 'email',
    scopes: { read: ['crm.objects.contacts.read'], write: ['crm.objects.contacts.write'] },
  },
  companies: {
    type: 'companies',
    singular: 'company',
    objectTypeId: '0-2',
    lastModifiedProperty: 'hs_lastmodifieddate',
    defaultProperties: ['createdate', 'domain', 'hs_lastmodifieddate', 'hs_object_id', 'name'],
    uniqueProperty: 'domain',
    scopes: { read: ['crm.objects.companies.read'], write: ['crm.objects.companies.write'] },
  },
};

const ALIASES: Record<string, ObjectType> = {
  tickets: 'tickets', ticket: 'tickets', '0-5': 'tickets',
  contacts: 'contacts', contact: 'contacts', '0-1': 'contacts',
  companies: 'companies', company: 'companies', '0-2': 'companies',
};

export function objectTypeOf(name: string): ObjectType | undefined {
  return ALIASES[name.toLowerCase()];
}

/** Properties holding datetimes: stored as ISO strings, compared as epoch ms, filterable by ms or ISO. */
export const DATE_PROPERTIES = new Set(['createdate', 'hs_lastmodifieddate', 'lastmodifieddate', 'closed_date', 'hs_lastactivitydate', 'time_to_close']);

export const ALWAYS_RETURNED = (info: ObjectTypeInfo): string[] => ['createdate', info.lastModifiedProperty, 'hs_object_id'];

/** HUBSPOT_DEFINED association type ids (the reference's table); `default` is the unlabelled one. */
interface PairTypes {
  default: number;
  primary?: number;
}

const PAIRS: Record<string, PairTypes> = {
  'tickets>contacts': { default: 16 },
  'contacts>tickets': { default: 15 },
  'tickets>companies': { default: 339, primary: 26 },
  'companies>tickets': { default: 340, primary: 25 },
  'contacts>companies': { default: 279, primary: 1 },
  'companies>contacts': { default: 280, primary: 2 },
};

/** Each type id's reverse, so writing one direction writes the other. */
const INVERSE: Record<number, number> = { 16: 15, 15: 16, 339: 340, 340: 339, 26: 25, 25: 26, 279: 280, 280: 279, 1: 2, 2: 1 };

/** The names the v3 object endpoints put in `associations.<type>.results[].type`. */
const V3_NAMES: Record<number, string> = {
  16: 'ticket_to_contact',
  15: 'contact_to_ticket',
  339: 'ticket_to_company_unlabeled',
  26: 'ticket_to_company',
  340: 'company_to_ticket_unlabeled',
  25: 'company_to_ticket',
  279: 'contact_to_company_unlabeled',
  1: 'contact_to_company',
  280: 'company_to_contact_unlabeled',
  2: 'company_to_contact',
};

export function defaultAssociationType(from: ObjectType, to: ObjectType): number | undefined {
  return PAIRS[`${from}>${to}`]?.default;
}

export function isKnownAssociationType(from: ObjectType, to: ObjectType, typeId: number): boolean {
  const p = PAIRS[`${from}>${to}`];
  return p !== undefined && (p.default === typeId || p.primary === typeId);
}

/** The object type a HUBSPOT_DEFINED type id points at from `from`, for create-with-associations. */
export function associationTarget(from: ObjectType, typeId: number): ObjectType | undefined {
  for (const [pair, t] of Object.entries(PAIRS)) {
    const [a, b] = pair.split('>') as [ObjectType, ObjectType];
    if (a === from && (t.default === typeId || t.primary === typeId)) return b;
  }
  return undefined;
}

export function inverseAssociationType(typeId: number): number | undefined {
  return INVERSE[typeId];
}

export function v3AssociationName(typeId: number): string {
  return V3_NAMES[typeId] ?? String(typeId);
}
