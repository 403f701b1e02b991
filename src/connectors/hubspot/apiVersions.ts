/**
 * The one place that names HubSpot API versions. HubSpot moved to date-based versions (2026-03, …):
 * OAuth v1 stops on 2027-02-16 and the semantic CRM versions (v3, v4) end in September 2027. When a
 * version moves, it moves here and nowhere else.
 *
 * `@hubspot/api-client` 14.x only knows `/crm/v3`, `/crm/v4` and `/oauth/v1`, so the OAuth calls go
 * through its `apiRequest` (which honours `basePath`) with the paths below, never through its
 * `oauth.*Api` helpers. CRM calls still use the SDK's v3/v4 codegen; moving them means either a newer
 * SDK or `apiRequest` with `CRM_PATHS`, both driven from this file.
 */

/** Date version of the OAuth token endpoints (exchange, refresh, introspection, revocation). */
export const HUBSPOT_OAUTH_VERSION = '2026-03';

export const OAUTH_PATHS = {
  token: `/oauth/${HUBSPOT_OAUTH_VERSION}/token`,
  introspect: `/oauth/${HUBSPOT_OAUTH_VERSION}/token/introspect`,
  revoke: `/oauth/${HUBSPOT_OAUTH_VERSION}/token/revoke`,
} as const;

/** The browser-facing consent page; not an API host, so it does not follow `HUBSPOT_API_BASE_URL`. */
export const HUBSPOT_AUTHORIZE_URL = 'https://app.hubspot.com/oauth/authorize';

/** CRM object API version the SDK calls (list, get, batch, search). */
export const CRM_OBJECTS_VERSION = 'v3';
/** CRM associations API version the SDK calls (v4 ends 2027-03-30, earlier than v3). */
export const CRM_ASSOCIATIONS_VERSION = 'v4';

/** Paths for calls made with `apiRequest` rather than the codegen, built from the versions above. */
export const CRM_PATHS = {
  objects: (objectType: string) => `/crm/${CRM_OBJECTS_VERSION}/objects/${encodeURIComponent(objectType)}`,
  associationsBatchCreate: (from: string, to: string) => `/crm/${CRM_ASSOCIATIONS_VERSION}/associations/${encodeURIComponent(from)}/${encodeURIComponent(to)}/batch/create`,
} as const;
