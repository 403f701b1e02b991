import type { EventDefinition } from '../platform/events/catalog';
import { HUBSPOT_EVENT_CATALOG } from './hubspot/eventCatalog';
import { GRAPH_EVENT_CATALOG } from './msgraph/eventCatalog';

/** Every event type any connector sends on `engine-events`: what `asyncapi.json` is generated from. */
export const ENGINE_EVENT_CATALOG: readonly EventDefinition[] = [...HUBSPOT_EVENT_CATALOG, ...GRAPH_EVENT_CATALOG];
