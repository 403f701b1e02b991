import type { SyncObjectType } from './messages';

/** What the sync reads of each object type, and how the engine hears about it. */
export interface ObjectTypeSpec {
  type: SyncObjectType;
  /** Singular name used in engine event types: `ticket.updated`. */
  eventName: 'ticket' | 'contact' | 'company';
  /**
   * The last-modified property: contacts use `lastmodifieddate`, tickets and companies
   * `hs_lastmodifieddate` (HubSpot's default-properties table).
   */
  lastModifiedProperty: string;
  /** Properties asked for in the same list or search call (HubSpot returns only what is named). */
  properties: readonly string[];
  /**
   * Associated object types read with the object. The list API returns them in the same call; search
   * cannot, so an incremental page reads them with one v4 batch call per type.
   */
  associations: readonly SyncObjectType[];
}

export const OBJECT_SPECS: Readonly<Record<SyncObjectType, ObjectTypeSpec>> = {
  tickets: {
    type: 'tickets',
    eventName: 'ticket',
    lastModifiedProperty: 'hs_lastmodifieddate',
    properties: [
      'subject',
      'content',
      'hs_ticket_priority',
      'hs_pipeline',
      'hs_pipeline_stage',
      'hs_ticket_category',
      'hubspot_owner_id',
      'source_type',
      'createdate',
      'closed_date',
      'hs_lastmodifieddate',
    ],
    associations: ['contacts', 'companies'],
  },
  contacts: {
    type: 'contacts',
    eventName: 'contact',
    lastModifiedProperty: 'lastmodifieddate',
    properties: ['email', 'firstname', 'lastname', 'phone', 'mobilephone', 'company', 'jobtitle', 'lifecyclestage', 'createdate', 'lastmodifieddate'],
    associations: ['companies'],
  },
  companies: {
    type: 'companies',
    eventName: 'company',
    lastModifiedProperty: 'hs_lastmodifieddate',
    properties: ['name', 'domain', 'website', 'phone', 'industry', 'city', 'state', 'country', 'createdate', 'hs_lastmodifieddate'],
    // Company → contact lists can run to thousands per company; the contact side carries the pair.
    associations: [],
  },
};
