import { healthProbe, InvalidGrantError, type BaseConnector } from '../../../../src/connectors/base';
import { integrationId, tenantId } from '../../../../src/storage/keys';

describe('healthProbe', () => {
  it('is true when the probe resolves, whatever it resolves to', async () => {
    await expect(healthProbe(async () => undefined)).resolves.toBe(true);
    await expect(healthProbe(async () => ({ ok: false }))).resolves.toBe(true);
  });

  it('is false, never a rejection, when the probe throws or rejects', async () => {
    await expect(healthProbe(async () => Promise.reject(new Error('down')))).resolves.toBe(false);
    await expect(
      healthProbe(() => {
        throw new Error('synchronous');
      }),
    ).resolves.toBe(false);
  });

  it('is false at the deadline, aborting a probe that hangs', async () => {
    let seen: AbortSignal | undefined;
    const started = Date.now();
    const result = await healthProbe(
      (signal) => {
        seen = signal;
        return new Promise(() => undefined);
      },
      { timeoutMs: 30 },
    );
    expect(result).toBe(false);
    expect(seen?.aborted).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('BaseConnector contract', () => {
  // A minimal connector, as the HubSpot/Graph ones will be: health via healthProbe, auth via typed errors.
  class RevokedConnector implements BaseConnector {
    readonly name = 'fake';
    healthCheck(): Promise<boolean> {
      return healthProbe(() => this.authenticate());
    }
    async authenticate(): Promise<void> {
      throw new InvalidGrantError({ tenant: tenantId('t1'), integration: integrationId('i1'), reason: 'invalid_grant' });
    }
  }

  it('healthCheck reports false where authenticate throws the typed reason', async () => {
    const c = new RevokedConnector();
    await expect(c.healthCheck()).resolves.toBe(false);
    await expect(c.authenticate()).rejects.toMatchObject({ name: 'InvalidGrantError', code: 'integration-needs-reauth', status: 409 });
  });
});
