import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { parseConfig } from '../../../../src/config';
import { createTeamsServices, InvalidWebhookUrlError, putChannels } from '../../../../src/connectors/teams';
import { Logger } from '../../../../src/platform/logging';
import { createServices } from '../../../../src/platform/services';
import { tenantId } from '../../../../src/storage';

/**
 * Loopback webhook URLs (a fake Teams) are an explicit, default-off setting, not a guess from the
 * platform's environment variables: a local environment without the setting refuses them.
 */
describe('loopback Teams webhook URLs', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(`${os.tmpdir()}/itil-teams-loopback-`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const teamsWith = (extra: NodeJS.ProcessEnv) =>
    createTeamsServices(
      createServices(
        parseConfig({
          AzureWebJobsStorage: 'UseDevelopmentStorage=true',
          LOCAL_SECRET_KEY: Buffer.alloc(32, 3).toString('base64'),
          LOCAL_SECRET_DIR: dir,
          PUBLIC_BASE_URL: 'http://localhost:7071',
          API_JWT_SECRET: 'jwt-signing-secret-that-is-long-enough-0123456789',
          TEAMS_WEBHOOK_URL: 'http://127.0.0.1:9/workflows/fallback?sig=abc',
          ...extra,
        }),
      ),
    );
  const log = new Logger({ debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined });

  it('are refused without TEAMS_ALLOW_LOOPBACK_WEBHOOKS, outside Azure too: as a channel (400, nothing stored) and as the fallback', async () => {
    const teams = teamsWith({});
    expect(teams.allowLoopback).toBe(false);
    expect(teams.fallbackUrl).toBeUndefined();
    for (const url of ['http://127.0.0.1:7777/workflows/x', 'http://localhost:7777/webhookb2/x', 'http://[::1]:7777/workflows/x']) {
      const put = putChannels(teams, tenantId('tenant-lb'), { channels: [{ name: 'critical', webhook_url: url }] }, log);
      await expect(put).rejects.toBeInstanceOf(InvalidWebhookUrlError);
      await expect(put).rejects.toMatchObject({ status: 400 });
    }
  });

  it('are accepted with TEAMS_ALLOW_LOOPBACK_WEBHOOKS=true', () => {
    const teams = teamsWith({ TEAMS_ALLOW_LOOPBACK_WEBHOOKS: 'true' });
    expect(teams.allowLoopback).toBe(true);
    expect(teams.fallbackUrl).toBe('http://127.0.0.1:9/workflows/fallback?sig=abc');
  });
});
