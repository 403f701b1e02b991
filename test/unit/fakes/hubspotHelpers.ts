import { Client } from '@hubspot/api-client';
import type { FakeHubSpot } from '../../fakes/hubspot';

/** Shared steps of the fake-HubSpot tests: a real SDK client on the fake, and the OAuth code exchange over plain HTTP. */

export const REDIRECT_URI = 'https://connectors.example.test/api/hubspot/oauth/callback';

export interface TokenResponse {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  token_type: string;
  hub_id: number;
  scopes: string[];
}

export function sdk(fake: FakeHubSpot, accessToken: string, numberOfApiCallRetries = 0): Client {
  return new Client({ accessToken, basePath: fake.url, numberOfApiCallRetries });
}

export async function postForm(url: string, form: Record<string, string>): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
}

/** Consent plus code exchange on the date-versioned endpoint, as the connector does it. */
export async function connect(fake: FakeHubSpot, hubId: number): Promise<TokenResponse> {
  const code = fake.issueAuthorizationCode(hubId, REDIRECT_URI);
  const res = await postForm(`${fake.url}/oauth/2026-03/token`, {
    grant_type: 'authorization_code',
    client_id: fake.clientId,
    client_secret: fake.clientSecret,
    redirect_uri: REDIRECT_URI,
    code,
  });
  if (res.status !== 200) throw new Error(`token exchange failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as TokenResponse;
}

/** The SDK's thrown `ApiException` (code + parsed body), or a failure if the call did not throw one. */
export async function apiError(p: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown>; headers: Record<string, string> }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: unknown; body?: unknown; headers?: unknown };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, body: (err.body ?? {}) as Record<string, unknown>, headers: (err.headers ?? {}) as Record<string, string> };
  }
  throw new Error('expected the call to fail');
}
