import { clearConnectorRegistry, registerConnector } from '../../../src/connectors/registry';
import { checkHealth } from '../../../src/platform/health';
import type { Services } from '../../../src/platform/services';

function services(opts: { storage: boolean; secrets: boolean }): Services {
  return {
    storage: { ping: async () => (opts.storage ? undefined : Promise.reject(new Error('storage down: AccountKey=abc'))) },
    secrets: { healthCheck: async () => opts.secrets },
  } as unknown as Services;
}

const connector = (name: string, up: boolean | 'throws') => ({
  name,
  authenticate: async () => undefined,
  healthCheck: async () => {
    if (up === 'throws') throw new Error('boom');
    return up;
  },
});

describe('checkHealth', () => {
  afterEach(() => clearConnectorRegistry());

  it('is healthy when storage, secrets and required connectors are up', async () => {
    registerConnector({ name: 'hubspot', required: true, create: () => connector('hubspot', true) });
    registerConnector({ name: 'teams', required: false, create: () => undefined });
    expect(await checkHealth(services({ storage: true, secrets: true }))).toEqual({
      status: 'healthy',
      checks: { storage: 'up', secrets: 'up', connectors: { hubspot: 'up', teams: 'not_configured' } },
    });
  });

  it('is unhealthy when a required connector is down or throws, but not for an optional one', async () => {
    registerConnector({ name: 'optional', required: false, create: () => connector('optional', false) });
    expect((await checkHealth(services({ storage: true, secrets: true }))).status).toBe('healthy');
    registerConnector({ name: 'graph', required: true, create: () => connector('graph', 'throws') });
    const report = await checkHealth(services({ storage: true, secrets: true }));
    expect(report.status).toBe('unhealthy');
    expect(report.checks.connectors).toEqual({ optional: 'down', graph: 'down' });
  });

  it('is unhealthy when storage or the secret store is down, and says only up or down', async () => {
    const r1 = await checkHealth(services({ storage: false, secrets: true }));
    expect(r1).toEqual({ status: 'unhealthy', checks: { storage: 'down', secrets: 'up', connectors: {} } });
    expect(JSON.stringify(r1)).not.toContain('AccountKey');
    expect((await checkHealth(services({ storage: true, secrets: false }))).checks.secrets).toBe('down');
  });
});
