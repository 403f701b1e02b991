import type { AccessTokenRec, PortalInfo } from './auth';
import { OBJECT_TYPES, type ObjectType } from './objects';
import type { PortalStore } from './store';
import { hubspotError, json, type Reply } from './wire';

/** What an authenticated API route gets: the caller's token and portal, the parsed request. */
export interface ApiCtx {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Parsed JSON body, undefined when there is none. */
  body: unknown;
  token: AccessTokenRec;
  portal: PortalStore;
  info: PortalInfo;
  baseUrl: string;
  now: number;
}

export function missingScopes(required: string[]): Reply {
  return hubspotError(
    403,
    'MISSING_SCOPES',
    "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
    { errors: [{ message: 'One or more of the following scopes are required.', context: { requiredGranularScopes: required } }], links: { scopes: 'https://developers.hubspot.com/scopes' } },
  );
}

/** Write scopes imply nothing about read here, as in HubSpot: each call names what it needs. */
export function checkScopes(ctx: ApiCtx, type: ObjectType, access: 'read' | 'write'): Reply | undefined {
  const required = OBJECT_TYPES[type].scopes[access];
  return required.some((s) => ctx.token.scopes.includes(s)) ? undefined : missingScopes(required);
}

export function accountDetails(ctx: ApiCtx): Reply {
  return json(200, {
    portalId: ctx.token.hubId,
    accountType: 'STANDARD',
    timeZone: 'US/Eastern',
    companyCurrency: 'USD',
    additionalCurrencies: [],
    utcOffset: '-05:00',
    utcOffsetMilliseconds: -18_000_000,
    uiDomain: 'app.hubspot.com',
    dataHostingLocation: 'na1',
  });
}
