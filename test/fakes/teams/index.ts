export { startFakeTeams, TEAMS_LIMITS, type FakeTeams, type Injected, type ReceivedPost } from './webhookServer';
export { checkEnvelope, schemaErrors, parserErrors, cardTexts, officialSchemaAvailable, MAX_WEBHOOK_BYTES } from './cardValidator';
export { loadOfficialSchema, OFFICIAL_SCHEMA_SHA256, OFFICIAL_SCHEMA_SOURCE, schemaCandidates } from './officialSchema';
