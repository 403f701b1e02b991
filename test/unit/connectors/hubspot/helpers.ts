import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { parseConfig } from '../../../../src/config/config';
import { createServices, type Services } from '../../../../src/platform/services';
import { consoleSink, Logger } from '../../../../src/platform/logging';
import { createHubSpotServices, type HubSpotServices, type HubSpotServicesOptions } from '../../../../src/connectors/hubspot';
import type { QueueName } from '../../../../src/storage';
import { startFakeHubSpot, type FakeHubSpot, type FakeHubSpotOptions } from '../../../fakes/hubspot';
import { useAzurite } from '../../../helpers/azurite';
import { drainQueue } from './syncKit';
import { TEST_JWT_SECRET } from '../../../helpers/jwt';

export const REDIRECT_URI = 'http://localhost:7071/api/hubspot/oauth/callback';

export interface HubSpotWorld {
  fake: FakeHubSpot;
  base: Services;
  hs: HubSpotServices;
  log: Logger;
  connectionString: string;
  /** Messages currently on a queue, decoded and removed. */
  drain(queue: QueueName): Promise<unknown[]>;
  stop(): Promise<void>;
}

/**
 * The app's real services (config parsed from an environment, Azurite, the local secret store in a
 * temp dir) pointed at a fake HubSpot: what a function invocation gets, without the host.
 */
export async function hubspotWorld(opts: { fake?: FakeHubSpotOptions; services?: HubSpotServicesOptions; env?: Record<string, string> } = {}): Promise<HubSpotWorld> {
  const az = await useAzurite();
  const fake = await startFakeHubSpot(opts.fake);
  const dir = mkdtempSync(`${os.tmpdir()}/hs-secrets-`);
  const config = parseConfig({
    AzureWebJobsStorage: az.connectionString,
    LOCAL_SECRET_KEY: randomBytes(32).toString('base64'),
    LOCAL_SECRET_DIR: dir,
    PUBLIC_BASE_URL: 'http://localhost:7071',
    API_JWT_SECRET: TEST_JWT_SECRET,
    HUBSPOT_CLIENT_ID: fake.clientId,
    HUBSPOT_CLIENT_SECRET: fake.clientSecret,
    HUBSPOT_REDIRECT_URI: REDIRECT_URI,
    HUBSPOT_API_BASE_URL: fake.url,
    LOG_LEVEL: 'error',
    ...opts.env,
  });
  const base = createServices(config);
  const log = new Logger(consoleSink, { functionName: 'test' }, 'error');
  const hs = createHubSpotServices(base, { log, ...opts.services });
  return {
    fake,
    base,
    hs,
    log,
    connectionString: az.connectionString,
    drain: (queue) => drainQueue(base.storage, queue),
    async stop() {
      await fake.close();
      await az.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
