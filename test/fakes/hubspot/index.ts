/**
 * Fake HubSpot for tests and benchmarks: OAuth (date-versioned and legacy v1), private-app tokens,
 * CRM v3 objects (list/get/batch/search with the 10,000 cap), associations v4, ticket pipelines,
 * rate limits with HubSpot's headers and 429 bodies, fault injection, and a v3-signing webhook sender.
 * `startFakeHubSpotProcess` runs the same fake in a child process (for benchmarks' memory figures).
 */
export { startFakeHubSpot } from './server';
export { signatureUri } from './webhooks';
export { startFakeHubSpotProcess, type RemoteFakeHubSpot } from './remote';
export type {
  FakeFault,
  FakeHubSpot,
  FakeHubSpotOptions,
  FakeHubSpotStats,
  FakePipeline,
  FakePipelineStage,
  FakePortal,
  FakeRateLimit,
  WebhookEventInput,
} from './types';
