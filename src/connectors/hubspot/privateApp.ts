import { newHubSpotClient } from './sdk';
import { z } from 'zod';
import { AppError } from '../../platform/errors';
import { registerSecret, type Logger } from '../../platform/logging';
import { tenantSecretName } from '../../secrets';
import type { IntegrationId, TenantId } from '../../storage';
import { withRetry } from '../base';
import { updateIntegration } from './integrationState';
import { raceSignal } from '../base/abort';
import type { HubSpotServices } from './services';
import { requestSync } from './sync/scheduler';
import { PRIVATE_APP_TOKEN_PURPOSE } from './tokens';

/** Paths of the two calls that identify a private-app token (not CRM; not versioned with it). */
const ACCOUNT_DETAILS_PATH = '/account-info/v3/details';
const PRIVATE_APP_TOKEN_INFO_PATH = '/oauth/v2/private-apps/get/access-token-info';

export const privateAppBodySchema = z.object({
  // HubSpot private-app tokens look like `pat-<region>-<uuid>`; allow room for format changes.
  access_token: z.string().trim().min(20).max(512).regex(/^[A-Za-z0-9._-]+$/, 'not a HubSpot access token'),
});

export class PrivateAppTokenRejectedError extends AppError {
  constructor(detail: string) {
    super({ status: 400, code: 'hubspot-token-rejected', title: 'HubSpot rejected the access token', detail });
  }
}

const accountSchema = z.looseObject({ portalId: z.union([z.number(), z.string()]).transform(String) });
const tokenInfoSchema = z.looseObject({ scopes: z.array(z.string()).optional(), hubId: z.union([z.number(), z.string()]).transform(String).optional() });

/**
 * Connects a private app: the token is checked against HubSpot first (its account, so webhooks and
 * limits key on the right portal; its scopes, best effort), then stored in the secret store, never in
 * the table. One call each, outside the portal's rate gate: the portal is what we are finding out.
 */
export async function connectPrivateApp(
  hs: HubSpotServices,
  tenant: TenantId,
  token: string,
  log: Logger,
): Promise<{ integrationId: IntegrationId; hubId: string; scopes: string[]; syncId: string | undefined }> {
  registerSecret(token);
  const base = hs.base.config.hubspot.apiBaseUrl;
  const account = await oneOff(base, token, { method: 'GET', path: ACCOUNT_DETAILS_PATH });
  if (account.status === 401 || account.status === 403) throw new PrivateAppTokenRejectedError('HubSpot does not accept this token (revoked, expired or not a private-app token).');
  if (account.status !== 200) throw new AppError({ status: 502, code: 'hubspot-error', title: 'HubSpot could not check the token', detail: `HubSpot answered ${account.status}` });
  const parsed = accountSchema.safeParse(account.json);
  if (!parsed.success) throw new AppError({ status: 502, code: 'hubspot-error', title: 'HubSpot could not check the token', detail: 'unexpected account details' });
  const hubId = parsed.data.portalId;

  let scopes: string[] = [];
  const info = await oneOff(base, token, { method: 'POST', path: PRIVATE_APP_TOKEN_INFO_PATH, body: { tokenKey: token } }).catch(() => undefined);
  const infoParsed = info?.status === 200 ? tokenInfoSchema.safeParse(info.json) : undefined;
  if (infoParsed?.success) scopes = infoParsed.data.scopes ?? [];

  const integration = await hs.base.integrations.create(tenant, { type: 'hubspot', status: 'pending', externalAccountId: hubId });
  const id = integration.integrationId;
  const secretName = tenantSecretName(tenant, id, PRIVATE_APP_TOKEN_PURPOSE);
  await hs.base.secrets.set(secretName, token, { contentType: 'text/plain' });
  await updateIntegration(hs.base.integrations, tenant, id, () => ({ status: 'active', secretName, scopes: scopes.join(' ') }));
  await hs.accountIndex.link(hubId, tenant, id);
  let syncId: string | undefined;
  try {
    syncId = (await requestSync({ storage: hs.base.storage, queues: hs.base.queues }, tenant, id, { syncType: 'full', trigger: 'connect' })).syncId;
  } catch (err) {
    log.error('could not queue the first full sync', { tenantId: tenant, integrationId: id, error: err instanceof Error ? err.message : String(err) });
  }
  log.info('HubSpot private app connected', { tenantId: tenant, integrationId: id, portalId: hubId });
  return { integrationId: id, hubId, scopes, syncId };
}

async function oneOff(basePath: string, token: string, req: { method: 'GET' | 'POST'; path: string; body?: unknown }): Promise<{ status: number; json: unknown }> {
  return withRetry(
    async () => {
      const signal = AbortSignal.timeout(10_000);
      const client = newHubSpotClient({ accessToken: token, basePath, numberOfApiCallRetries: 0 });
      const res = await raceSignal(client.apiRequest({ method: req.method, path: req.path, ...(req.body !== undefined ? { body: req.body } : {}) }), signal);
      const text = await raceSignal(res.text(), signal);
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      if (res.status >= 500 || res.status === 429) throw Object.assign(new Error(`HubSpot answered ${res.status}`), { status: res.status });
      return { status: res.status, json };
    },
    { idempotent: true, maxAttempts: 3, maxElapsedMs: 30_000 },
  );
}
