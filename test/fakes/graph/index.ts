export { startFakeGraph } from './server';
export type { IdTokenTamper } from './identity';
export type { FakeGraph, FakeGraphOptions, MailInput, OutboundDelivery, RecordedGraphRequest, ThrottleRule } from './server';
export type { FakeEvent, FakeGroup, FakeMessage, FakeSubscription, FakeUser } from './model';
