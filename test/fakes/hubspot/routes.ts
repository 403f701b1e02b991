import type { OAuthState } from './auth';
import * as assoc from './associations';
import { accountDetails, type ApiCtx } from './context';
import * as crm from './crm';
import { objectTypeOf, type ObjectType } from './objects';
import type { SearchContext } from './search';
import { empty, hubspotError, validationError, type Reply } from './wire';

/** The fake's route table: HubSpot's paths, each with the label its calls are counted under. */

type ApiHandler = (ctx: ApiCtx, m: string[]) => Reply;

export interface ApiRoute {
  method: string;
  re: RegExp;
  label: (m: string[]) => string;
  /** Index of the capture holding a CRM object type to validate and scope-check. */
  typeAt?: number;
  access?: 'read' | 'write';
  search?: boolean;
  handler: ApiHandler;
}

export interface PublicRoute {
  method: string;
  re: RegExp;
  label: (m: string[]) => string;
  legacyOauth?: boolean;
  handler: (req: { body: string; query: URLSearchParams }, m: string[]) => Reply;
}

/** The i-th capture of a route match ('' when absent). */
export const t = (m: string[], i: number): string => m[i] ?? '';
const asType = (m: string[], i: number): ObjectType => objectTypeOf(t(m, i)) as ObjectType;

/** Date versions (`2026-03`) and the interim `v3` of the OAuth, account-info and appinstalls APIs. */
const VERSION = '(v3|\\d{4}-\\d{2})';

export function apiRoutes(deps: { oauth: OAuthState; searchContext: () => SearchContext }): ApiRoute[] {
  const { oauth } = deps;
  return [
    { method: 'GET', re: /^\/crm\/v3\/objects\/([^/]+)$/, label: (m) => `GET /crm/v3/objects/${t(m, 1)}`, typeAt: 1, access: 'read', handler: (c, m) => crm.listObjects(c, asType(m, 1)) },
    { method: 'POST', re: /^\/crm\/v3\/objects\/([^/]+)$/, label: (m) => `POST /crm/v3/objects/${t(m, 1)}`, typeAt: 1, access: 'write', handler: (c, m) => crm.createObject(c, asType(m, 1)) },
    {
      method: 'POST', re: /^\/crm\/v3\/objects\/([^/]+)\/search$/, label: (m) => `POST /crm/v3/objects/${t(m, 1)}/search`, typeAt: 1, access: 'read', search: true,
      handler: (c, m) => crm.search(c, asType(m, 1), deps.searchContext()),
    },
    { method: 'POST', re: /^\/crm\/v3\/objects\/([^/]+)\/batch\/read$/, label: (m) => `POST /crm/v3/objects/${t(m, 1)}/batch/read`, typeAt: 1, access: 'read', handler: (c, m) => crm.batchRead(c, asType(m, 1)) },
    { method: 'POST', re: /^\/crm\/v3\/objects\/([^/]+)\/batch\/create$/, label: (m) => `POST /crm/v3/objects/${t(m, 1)}/batch/create`, typeAt: 1, access: 'write', handler: (c, m) => crm.batchCreate(c, asType(m, 1)) },
    { method: 'POST', re: /^\/crm\/v3\/objects\/([^/]+)\/batch\/update$/, label: (m) => `POST /crm/v3/objects/${t(m, 1)}/batch/update`, typeAt: 1, access: 'write', handler: (c, m) => crm.batchUpdate(c, asType(m, 1)) },
    { method: 'POST', re: /^\/crm\/v3\/objects\/([^/]+)\/batch\/upsert$/, label: (m) => `POST /crm/v3/objects/${t(m, 1)}/batch/upsert`, typeAt: 1, access: 'write', handler: (c, m) => crm.batchUpsert(c, asType(m, 1)) },
    { method: 'POST', re: /^\/crm\/v3\/objects\/([^/]+)\/batch\/archive$/, label: (m) => `POST /crm/v3/objects/${t(m, 1)}/batch/archive`, typeAt: 1, access: 'write', handler: (c, m) => crm.batchArchive(c, asType(m, 1)) },
    { method: 'POST', re: /^\/crm\/v3\/objects\/([^/]+)\/merge$/, label: (m) => `POST /crm/v3/objects/${t(m, 1)}/merge`, typeAt: 1, access: 'write', handler: (c, m) => crm.merge(c, asType(m, 1)) },
    { method: 'GET', re: /^\/crm\/v3\/objects\/([^/]+)\/([^/]+)$/, label: (m) => `GET /crm/v3/objects/${t(m, 1)}/{id}`, typeAt: 1, access: 'read', handler: (c, m) => crm.getObject(c, asType(m, 1), t(m, 2)) },
    { method: 'PATCH', re: /^\/crm\/v3\/objects\/([^/]+)\/([^/]+)$/, label: (m) => `PATCH /crm/v3/objects/${t(m, 1)}/{id}`, typeAt: 1, access: 'write', handler: (c, m) => crm.updateObject(c, asType(m, 1), t(m, 2)) },
    { method: 'DELETE', re: /^\/crm\/v3\/objects\/([^/]+)\/([^/]+)$/, label: (m) => `DELETE /crm/v3/objects/${t(m, 1)}/{id}`, typeAt: 1, access: 'write', handler: (c, m) => crm.archiveObject(c, asType(m, 1), t(m, 2)) },
    { method: 'GET', re: /^\/crm\/v3\/pipelines\/([^/]+)$/, label: (m) => `GET /crm/v3/pipelines/${t(m, 1)}`, handler: (c, m) => crm.pipelines(c, t(m, 1), undefined, false) },
    { method: 'GET', re: /^\/crm\/v3\/pipelines\/([^/]+)\/([^/]+)$/, label: (m) => `GET /crm/v3/pipelines/${t(m, 1)}/{pipelineId}`, handler: (c, m) => crm.pipelines(c, t(m, 1), t(m, 2), false) },
    { method: 'GET', re: /^\/crm\/v3\/pipelines\/([^/]+)\/([^/]+)\/stages$/, label: (m) => `GET /crm/v3/pipelines/${t(m, 1)}/{pipelineId}/stages`, handler: (c, m) => crm.pipelines(c, t(m, 1), t(m, 2), true) },
    {
      method: 'PUT', re: /^\/crm\/v4\/objects\/([^/]+)\/([^/]+)\/associations\/default\/([^/]+)\/([^/]+)$/, label: (m) => `PUT /crm/v4/objects/${t(m, 1)}/{id}/associations/default/${t(m, 3)}/{toId}`,
      handler: (c, m) => assoc.putDefault(c, t(m, 1), t(m, 2), t(m, 3), t(m, 4)),
    },
    {
      method: 'PUT', re: /^\/crm\/v4\/objects\/([^/]+)\/([^/]+)\/associations\/([^/]+)\/([^/]+)$/, label: (m) => `PUT /crm/v4/objects/${t(m, 1)}/{id}/associations/${t(m, 3)}/{toId}`,
      handler: (c, m) => assoc.putLabelled(c, t(m, 1), t(m, 2), t(m, 3), t(m, 4)),
    },
    { method: 'GET', re: /^\/crm\/v4\/objects\/([^/]+)\/([^/]+)\/associations\/([^/]+)$/, label: (m) => `GET /crm/v4/objects/${t(m, 1)}/{id}/associations/${t(m, 3)}`, handler: (c, m) => assoc.listForObject(c, t(m, 1), t(m, 2), t(m, 3)) },
    { method: 'POST', re: /^\/crm\/v4\/associations\/([^/]+)\/([^/]+)\/batch\/read$/, label: (m) => `POST /crm/v4/associations/${t(m, 1)}/${t(m, 2)}/batch/read`, handler: (c, m) => assoc.batchRead(c, t(m, 1), t(m, 2)) },
    { method: 'POST', re: /^\/crm\/v4\/associations\/([^/]+)\/([^/]+)\/batch\/create$/, label: (m) => `POST /crm/v4/associations/${t(m, 1)}/${t(m, 2)}/batch/create`, handler: (c, m) => assoc.batchCreate(c, t(m, 1), t(m, 2)) },
    {
      method: 'POST', re: /^\/crm\/v4\/associations\/([^/]+)\/([^/]+)\/batch\/associate\/default$/, label: (m) => `POST /crm/v4/associations/${t(m, 1)}/${t(m, 2)}/batch/associate/default`,
      handler: (c, m) => assoc.batchDefault(c, t(m, 1), t(m, 2)),
    },
    { method: 'GET', re: new RegExp(`^/account-info/${VERSION}/details$`), label: (m) => `GET /account-info/${t(m, 1)}/details`, handler: (c) => accountDetails(c) },
    {
      method: 'DELETE', re: new RegExp(`^/appinstalls/${VERSION}/external-install$`), label: (m) => `DELETE /appinstalls/${t(m, 1)}/external-install`,
      handler: (c) => {
        if (c.token.kind !== 'oauth') return hubspotError(403, 'MISSING_SCOPES', 'Only public-app tokens can uninstall their app');
        oauth.uninstall(c.token.hubId);
        return empty(204);
      },
    },
  ];
}

export function oauthRoutes(deps: { oauth: OAuthState; authorize: (query: URLSearchParams) => Reply }): PublicRoute[] {
  const { oauth, authorize } = deps;
  return [
    { method: 'POST', re: new RegExp(`^/oauth/${VERSION}/token$`), label: (m) => `POST /oauth/${t(m, 1)}/token`, handler: (r) => oauth.token(r.body, false) },
    { method: 'POST', re: new RegExp(`^/oauth/${VERSION}/token/introspect$`), label: (m) => `POST /oauth/${t(m, 1)}/token/introspect`, handler: (r) => oauth.introspect(r.body) },
    { method: 'POST', re: new RegExp(`^/oauth/${VERSION}/token/revoke$`), label: (m) => `POST /oauth/${t(m, 1)}/token/revoke`, handler: (r) => oauth.revoke(r.body) },
    { method: 'POST', re: /^\/oauth\/v1\/token$/, label: () => 'POST /oauth/v1/token', legacyOauth: true, handler: (r) => oauth.token(r.body, true) },
    { method: 'GET', re: /^\/oauth\/v1\/access-tokens\/([^/]+)$/, label: () => 'GET /oauth/v1/access-tokens/{token}', legacyOauth: true, handler: (_r, m) => oauth.legacyAccessTokenInfo(t(m, 1)) },
    { method: 'GET', re: /^\/oauth\/v1\/refresh-tokens\/([^/]+)$/, label: () => 'GET /oauth/v1/refresh-tokens/{token}', legacyOauth: true, handler: (_r, m) => oauth.legacyRefreshTokenInfo(t(m, 1)) },
    { method: 'DELETE', re: /^\/oauth\/v1\/refresh-tokens\/([^/]+)$/, label: () => 'DELETE /oauth/v1/refresh-tokens/{token}', legacyOauth: true, handler: (_r, m) => oauth.legacyDeleteRefreshToken(t(m, 1)) },
    {
      method: 'POST', re: /^\/oauth\/v2\/private-apps\/get\/access-token-info$/, label: () => 'POST /oauth/v2/private-apps/get/access-token-info',
      handler: (r) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(r.body || '{}');
        } catch {
          return validationError('Invalid input JSON');
        }
        return oauth.privateAppTokenInfo(parsed);
      },
    },
    { method: 'GET', re: /^\/oauth\/(?:\d+\/)?authorize$/, label: () => 'GET /oauth/authorize', handler: (r) => authorize(r.query) },
  ];
}
