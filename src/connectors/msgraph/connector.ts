import type { Client } from '@microsoft/microsoft-graph-client';
import { getServices } from '../../platform/services';
import { integrationId, tenantId, type IntegrationId, type TenantId } from '../../storage';
import { healthProbe, InvalidGrantError, TokenRefreshError, type BaseConnector } from '../base';
import { registerConnector } from '../registry';
import { describeAuthError, type GraphClientFactory } from './client';
import { getGraphServices } from './services';

/**
 * Microsoft Graph for one Entra tenant, app-only: a customer's tenant (after admin consent), or the
 * app's home tenant for the deployment-wide health check.
 */
export class MsGraphConnector implements BaseConnector {
  readonly name = 'msgraph';

  constructor(
    private readonly factory: GraphClientFactory,
    readonly entraTenantId: string,
    private readonly ids: { tenant: TenantId; integration: IntegrationId },
  ) {}

  healthCheck(): Promise<boolean> {
    return healthProbe((signal) => this.factory.token(this.entraTenantId, signal));
  }

  /**
   * A token for the tenant. `InvalidGrantError` when the tenant no longer knows or trusts the app
   * (consent withdrawn, app deleted): a person must consent again. `TokenRefreshError` otherwise.
   */
  async authenticate(): Promise<void> {
    try {
      await this.factory.token(this.entraTenantId);
    } catch (err) {
      const d = describeAuthError(err);
      if (d.revoked) {
        throw new InvalidGrantError({ tenant: this.ids.tenant, integration: this.ids.integration, reason: 'invalid_grant', upstreamStatus: d.status, upstreamCode: d.code });
      }
      const retryable = d.status === undefined || d.status >= 500 || d.status === 429;
      throw new TokenRefreshError({
        tenant: this.ids.tenant,
        integration: this.ids.integration,
        retryable,
        detail: 'could not obtain a Microsoft Graph token for the tenant',
        upstreamStatus: d.status,
        upstreamCode: d.code,
      });
    }
  }

  client(): Client {
    return this.factory.client(this.entraTenantId);
  }
}

// Deployment-wide health: the app registration can get a token in its home tenant. Not required:
// Graph being down must not fail /api/health for tenants that only use HubSpot.
registerConnector({
  name: 'msgraph',
  required: false,
  create: () => {
    const home = getServices().config.msgraph.app?.homeTenantId;
    const factory = getGraphServices().factory;
    if (!home || !factory) return undefined;
    return new MsGraphConnector(factory, home, { tenant: tenantId('deployment'), integration: integrationId('msgraph-app') });
  },
});
