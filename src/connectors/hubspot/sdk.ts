import type { Client } from '@hubspot/api-client';

type ClientOptions = NonNullable<ConstructorParameters<typeof Client>[0]>;

/**
 * A new SDK client, the SDK loaded on first use: it is ~30 ms of every cold start (issue 13), and most
 * invocations of an instance never call HubSpot.
 */
export function newHubSpotClient(options: ClientOptions): Client {
  const sdk = require('@hubspot/api-client') as typeof import('@hubspot/api-client');
  return new sdk.Client(options);
}
