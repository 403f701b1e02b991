import { newHubSpotClient } from './sdk';
import { getServices } from '../../platform/services';
import type { IntegrationId, TenantId } from '../../storage';
import { healthProbe, type BaseConnector } from '../base';
import { registerConnector } from '../registry';
import { raceSignal } from '../base/abort';
import { getHubSpotServices, type HubSpotServices } from './services';

/**
 * The HubSpot connector as the rest of the app sees it. Deployment-wide (`/api/health`): HubSpot's API
 * answers at `HUBSPOT_API_BASE_URL`. Bound to an integration: `authenticate` makes sure it holds a
 * usable token (refreshing if due).
 */
export class HubSpotConnector implements BaseConnector {
  readonly name = 'hubspot';

  constructor(
    private readonly hs: () => HubSpotServices,
    private readonly binding?: { tenantId: TenantId; integrationId: IntegrationId },
  ) {}

  /** Any HTTP answer below 500 means HubSpot is up; no token is sent, so nothing counts against a portal. */
  healthCheck(): Promise<boolean> {
    return healthProbe(async (signal) => {
      const client = newHubSpotClient({ basePath: this.hs().base.config.hubspot.apiBaseUrl, numberOfApiCallRetries: 0 });
      const res = await raceSignal(client.apiRequest({ method: 'GET', path: '/crm/v3/objects/contacts', qs: { limit: '1' } }), signal);
      await res.body?.cancel();
      if (res.status >= 500) throw new Error(`HubSpot answered ${res.status}`);
    });
  }

  async authenticate(): Promise<void> {
    const hs = this.hs();
    if (!this.binding) {
      if (!hs.oauth) throw new Error('HubSpot OAuth is not configured');
      return;
    }
    const integration = await hs.getIntegration(this.binding.tenantId, this.binding.integrationId);
    await hs.authFor(integration).accessToken();
  }
}

registerConnector({
  name: 'hubspot',
  required: false,
  // Not configured (no HubSpot app) → "not_configured", and no call leaves the process.
  create: () => (getServices().config.hubspot.oauth ? new HubSpotConnector(getHubSpotServices) : undefined),
});
