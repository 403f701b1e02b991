import { defineEvent, type EventDefinition } from '../../platform/events/catalog';
import { hubspotObjectMergedSchema, type HubSpotObjectMerged } from './eventWorker';
import { hubspotObjectChangedSchema, hubspotSyncCompletedSchema, type HubSpotObjectChanged } from './sync/changes';
import { SYNC_OBJECT_TYPES, type SyncObjectType } from './sync/messages';
import { OBJECT_SPECS } from './sync/objects';

type Change = 'created' | 'updated' | 'deleted';

const CHANGE_WORDS: Record<Change, string> = {
  created: 'appeared in HubSpot (created there, or first seen by a full sync)',
  updated: 'changed in HubSpot (a property or an association)',
  deleted: 'was archived or deleted in HubSpot, or merged away into another object',
};

function objectChanged(type: SyncObjectType, change: Change) {
  const noun = OBJECT_SPECS[type].eventName;
  return defineEvent({
    name: `${noun}.${change}`,
    version: 1,
    connector: 'hubspot',
    summary: `A HubSpot ${noun} ${change}`,
    description:
      `A ${noun} of the tenant's HubSpot portal ${CHANGE_WORDS[change]}. Sent by the sync (full and incremental) and by the webhook worker; ` +
      `the id hashes the object and its HubSpot version, so the same change seen twice has one id. Our own writes to HubSpot are not echoed back.`,
    schema: hubspotObjectChangedSchema,
  });
}

/** Every event the HubSpot connector sends the engine. */
export const HUBSPOT_EVENTS = {
  objectChanged: Object.fromEntries(SYNC_OBJECT_TYPES.map((t) => [t, { created: objectChanged(t, 'created'), updated: objectChanged(t, 'updated'), deleted: objectChanged(t, 'deleted') }])) as Record<SyncObjectType, Record<Change, EventDefinition<HubSpotObjectChanged>>>,
  objectMerged: Object.fromEntries(
    SYNC_OBJECT_TYPES.map((t) => {
      const noun = OBJECT_SPECS[t].eventName;
      return [
        t,
        defineEvent({
          name: `${noun}.merged`,
          version: 1,
          connector: 'hubspot',
          summary: `HubSpot ${noun}s merged`,
          description: `Objects were merged in HubSpot: \`mergedObjectIds\` live on as \`primaryObjectId\` (or \`newObjectId\`). The merged-away objects get no deleted event of their own.`,
          schema: hubspotObjectMergedSchema,
        }),
      ];
    }),
  ) as Record<SyncObjectType, EventDefinition<HubSpotObjectMerged>>,
  syncCompleted: defineEvent({
    name: 'sync.completed',
    version: 1,
    connector: 'hubspot',
    summary: 'A HubSpot sync run ended',
    description: 'Every sync run of an integration ends with one: completed or failed, with its counts. Changes it found were sent before it.',
    schema: hubspotSyncCompletedSchema,
  }),
};

export const HUBSPOT_EVENT_CATALOG: EventDefinition[] = [
  ...SYNC_OBJECT_TYPES.flatMap((t) => Object.values(HUBSPOT_EVENTS.objectChanged[t])),
  ...Object.values(HUBSPOT_EVENTS.objectMerged),
  HUBSPOT_EVENTS.syncCompleted,
] as EventDefinition[];
