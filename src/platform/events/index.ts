export { EngineEventPublisher, cloudEventSchema, stableEventId, EVENT_TYPE_PREFIX } from './cloudEvents';
export type { CloudEvent, PublishInput, WireCloudEvent } from './cloudEvents';
