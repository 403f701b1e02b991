/**
 * infra/ read as text, held in step with the code: what the Bicep compiler cannot know (the settings the config
 * schema reads, the tables and queues the code uses, the roles it needs). Compiling and linting is
 * scripts/infra-check.js's job (run by .ci/run). Each check returns the problems it finds; the second half of this file
 * breaks copies of the real files on purpose and expects each check to notice.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { envSchema } from '../../../src/config/schema';
import { ALL_BLOB_CONTAINERS, ALL_QUEUES, ALL_TABLES } from '../../../src/storage/names';
import { parseBicep, stringItems } from './bicep-text';
import {
  anyPublishedRouteRegistered,
  appSettingsGroups,
  checkAppSettingsCoverSchema,
  checkAzureYaml,
  checkBlobLifecycle,
  checkHostJson,
  checkLocalSettingsSample,
  checkModuleWiring,
  checkNodeHeap,
  checkNoSecretsInSettings,
  checkOutputs,
  checkResourceProperties,
  checkRoleAssignments,
  checkRoutesRegistered,
  checkSettingsParse,
  checkTablesAndQueues,
  HOST_SETTINGS,
  KNOWN_ROLE_IDS,
  loadRepo,
  NOT_SET_IN_AZURE,
  type Repo,
} from './infra-checks';

const ROOT = path.resolve(__dirname, '../../..');
const repo = loadRepo(ROOT);

describe('infra/ matches the code', () => {
  it('reads every Bicep file it expects', () => {
    expect([...repo.bicep.keys()].sort()).toEqual(
      [
        'infra/app/functionapp.bicep',
        'infra/app/identity.bicep',
        'infra/app/keyvault.bicep',
        'infra/app/monitoring.bicep',
        'infra/app/rbac.bicep',
        'infra/app/storage.bicep',
        'infra/main.bicep',
      ].sort(),
    );
  });

  it('declares every table, queue and blob container in src/storage/names.ts, and nothing the code does not use', () => {
    const storage = repo.bicep.get('infra/app/storage.bicep');
    expect(stringItems(storage?.vars.get('tableNames'))).toEqual([...ALL_TABLES]);
    expect(stringItems(storage?.vars.get('queueNames'))).toEqual([...ALL_QUEUES]);
    expect(stringItems(storage?.vars.get('blobContainerNames'))).toEqual([...ALL_BLOB_CONTAINERS]);
    expect(checkTablesAndQueues(repo)).toEqual([]);
  });

  it('expires claim-check blobs (engine-event-data) by a lifecycle rule, later than the messages that name them', () => {
    expect(checkBlobLifecycle(repo)).toEqual([]);
  });

  it('sets every setting the config schema reads, or documents why Azure does not get it', () => {
    const problems: string[] = [];
    const set = appSettingsGroups(repo, problems).flatMap((g) => [...g.settings.keys()]);
    expect(problems).toEqual([]);
    const schemaKeys = Object.keys(envSchema.shape);
    expect(schemaKeys.length).toBeGreaterThan(20); // the shape is reachable through superRefine
    for (const key of schemaKeys) expect({ key, covered: set.includes(key) || key in NOT_SET_IN_AZURE }).toEqual({ key, covered: true });
    expect(checkAppSettingsCoverSchema(repo)).toEqual([]);
  });

  it('hands the app settings that pass the config schema, whichever optional groups are on', () => {
    expect(checkSettingsParse(repo)).toEqual([]);
  });

  it('puts no secret in an app setting: *SECRET* / *WEBHOOK_URL* values are Key Vault references', () => {
    const problems: string[] = [];
    const all = new Map(appSettingsGroups(repo, problems).flatMap((g) => [...g.settings]));
    for (const key of ['HUBSPOT_CLIENT_SECRET', 'MSGRAPH_CLIENT_SECRET', 'TEAMS_WEBHOOK_URL']) {
      expect(all.get(key)).toMatch(/^'@Microsoft\.KeyVault\(VaultName=/);
    }
    expect(checkNoSecretsInSettings(repo)).toEqual([]);
  });

  it('assigns exactly the expected roles, with real built-in role ids', () => {
    expect(Object.keys(KNOWN_ROLE_IDS)).toHaveLength(6);
    expect(checkRoleAssignments(repo)).toEqual([]);
  });

  it('locks the resources down: no shared keys, RBAC vault with purge protection, Entra-only telemetry, Flex on Node 22, HTTPS and TLS 1.2', () => {
    expect(checkResourceProperties(repo)).toEqual([]);
  });

  it('wires modules, parameters and outputs consistently', () => {
    expect(checkModuleWiring(repo)).toEqual([]);
    expect(checkOutputs(repo)).toEqual([]);
  });

  it('azure.yaml deploys the app as a function with a build mode .funcignore allows', () => {
    expect(checkAzureYaml(repo)).toEqual([]);
  });

  it('host.json uses extension bundle [4.*, 5.0.0) or later', () => {
    expect(checkHostJson(repo)).toEqual([]);
  });

  (existsSync(path.join(ROOT, 'local.settings.sample.json')) ? it : it.skip)('local.settings.sample.json lists the settings the schema reads', () => {
    expect(checkLocalSettingsSample(repo)).toEqual([]);
  });

  // Enforced once the first webhook / OAuth function exists; until then there is nothing to compare with.
  (anyPublishedRouteRegistered(repo) ? it : it.skip)('the functions register the routes infra/ publishes', () => {
    expect(checkRoutesRegistered(repo)).toEqual([]);
  });

  it("gives the worker the V8 heap the benchmark measures, for every instance size main.bicep allows", () => {
    expect(checkNodeHeap(repo)).toEqual([]);
  });

  it('documents host settings and not-set settings with a reason each', () => {
    for (const reason of [...Object.values(NOT_SET_IN_AZURE), ...Object.values(HOST_SETTINGS)]) expect(reason.length).toBeGreaterThan(10);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Each check fails on a broken copy
// ---------------------------------------------------------------------------------------------------------------

const COPIED = ['infra', 'azure.yaml', 'host.json', '.funcignore', 'README.md', 'local.settings.sample.json'];
const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

type Edit = { file: string; from: string | RegExp; to: string };

/** A copy of the repository's infra-related files with the edits applied; an edit that matches nothing throws. */
function brokenCopy(...edits: Edit[]): Repo {
  const dir = mkdtempSync(path.join(tmpdir(), 'infra-structure-'));
  temps.push(dir);
  for (const rel of COPIED) {
    const src = path.join(ROOT, rel);
    if (!existsSync(src)) continue;
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    cpSync(src, path.join(dir, rel), { recursive: true });
  }
  for (const edit of edits) {
    const target = path.join(dir, edit.file);
    const before = existsSync(target) ? readFileSync(target, 'utf8') : '';
    const after = before.replace(edit.from, edit.to);
    if (after === before) throw new Error(`edit of ${edit.file} matched nothing: ${String(edit.from)}`);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, after);
  }
  return loadRepo(dir);
}

const FA = 'infra/app/functionapp.bicep';

describe('the checks fail on a broken copy', () => {
  const cases: Array<{ what: string; edits: Edit[]; check: (r: Repo) => string[]; expect: RegExp }> = [
    {
      what: 'a table the code uses is not declared',
      edits: [{ file: 'infra/app/storage.bicep', from: /\n\s*'Leases'/, to: '' }],
      check: checkTablesAndQueues,
      expect: /table "Leases" is used by the code/,
    },
    {
      what: 'a queue the code does not use is declared',
      edits: [{ file: 'infra/app/storage.bicep', from: "  'engine-events'\n", to: "  'engine-events'\n  'orphan-queue'\n" }],
      check: checkTablesAndQueues,
      expect: /queue "orphan-queue" is declared in infra\/ but the code does not use it/,
    },
    {
      what: 'the claim-check container is not declared',
      edits: [{ file: 'infra/app/storage.bicep', from: "var blobContainerNames = [\n  'engine-event-data'\n]", to: 'var blobContainerNames = []' }],
      check: checkTablesAndQueues,
      expect: /blob container "engine-event-data" is used by the code/,
    },
    {
      what: 'a blob container the code does not use is declared',
      edits: [{ file: 'infra/app/storage.bicep', from: "  'engine-event-data'\n", to: "  'engine-event-data'\n  'orphan-data'\n" }],
      check: checkTablesAndQueues,
      expect: /blob container "orphan-data" is declared in infra\/ but the code does not use it/,
    },
    {
      what: 'the lifecycle rule is missing',
      edits: [{ file: 'infra/app/storage.bicep', from: /resource lifecycle [\s\S]*?\n}\n/, to: '' }],
      check: checkBlobLifecycle,
      expect: /expected one storage lifecycle management policy, found 0/,
    },
    {
      what: 'the lifecycle rule matches another container',
      edits: [{ file: 'infra/app/storage.bicep', from: "'engine-event-data/'", to: "'other/'" }],
      check: checkBlobLifecycle,
      expect: /no lifecycle rule matches the prefix 'engine-event-data\/'/,
    },
    {
      what: 'the lifecycle rule is switched off',
      edits: [{ file: 'infra/app/storage.bicep', from: 'enabled: true', to: 'enabled: false' }],
      check: checkBlobLifecycle,
      expect: /engine-event-data rule enabled is false/,
    },
    {
      what: 'claim-check blobs may expire before the messages that name them',
      edits: [
        { file: 'infra/app/storage.bicep', from: '@minValue(8)', to: '@minValue(1)' },
        { file: 'infra/app/storage.bicep', from: 'param engineEventDataRetentionDays int = 14', to: 'param engineEventDataRetentionDays int = 3' },
      ],
      check: checkBlobLifecycle,
      expect: /@minValue above the 7-day message lifetime \(is 1\)[\s\S]*default to more than 7 days \(is 3\)/,
    },
    {
      what: 'the lifecycle rule deletes after a fixed number rather than the parameter',
      edits: [{ file: 'infra/app/storage.bicep', from: 'daysAfterModificationGreaterThan: engineEventDataRetentionDays', to: 'daysAfterModificationGreaterThan: 30' }],
      check: checkBlobLifecycle,
      expect: /must delete by daysAfterModificationGreaterThan from a parameter \(is 30\)/,
    },
    {
      what: 'shared-key access is allowed',
      edits: [{ file: 'infra/app/storage.bicep', from: 'allowSharedKeyAccess: false', to: 'allowSharedKeyAccess: true' }],
      check: checkResourceProperties,
      expect: /allowSharedKeyAccess is true/,
    },
    {
      what: 'the vault has no purge protection',
      edits: [{ file: 'infra/app/keyvault.bicep', from: 'enablePurgeProtection: true', to: 'enablePurgeProtection: false' }],
      check: checkResourceProperties,
      expect: /enablePurgeProtection is false/,
    },
    {
      what: 'the vault uses access policies instead of RBAC',
      edits: [{ file: 'infra/app/keyvault.bicep', from: 'enableRbacAuthorization: true', to: 'enableRbacAuthorization: false' }],
      check: checkResourceProperties,
      expect: /enableRbacAuthorization is false/,
    },
    {
      what: 'Application Insights accepts key-only ingestion',
      edits: [{ file: 'infra/app/monitoring.bicep', from: 'DisableLocalAuth: true', to: 'DisableLocalAuth: false' }],
      check: checkResourceProperties,
      expect: /DisableLocalAuth is false/,
    },
    {
      what: 'the runtime is Node 20',
      edits: [{ file: FA, from: "version: '22'", to: "version: '20'" }],
      check: checkResourceProperties,
      expect: /runtime version is '20'/,
    },
    {
      what: 'HTTP is allowed and TLS 1.0 accepted',
      edits: [
        { file: FA, from: 'httpsOnly: true', to: 'httpsOnly: false' },
        { file: FA, from: "minTlsVersion: '1.2'", to: "minTlsVersion: '1.0'" },
      ],
      check: checkResourceProperties,
      expect: /httpsOnly is false[\s\S]*minTlsVersion is '1.0'|minTlsVersion is '1.0'[\s\S]*httpsOnly is false/,
    },
    {
      what: 'the plan is not Flex Consumption',
      edits: [{ file: FA, from: "name: 'FC1'", to: "name: 'Y1'" }],
      check: checkResourceProperties,
      expect: /plan sku.name is 'Y1'/,
    },
    {
      what: 'a secret is written into an app setting',
      edits: [{ file: FA, from: /HUBSPOT_CLIENT_SECRET: '@Microsoft\.KeyVault\([^\n]*/, to: "HUBSPOT_CLIENT_SECRET: 'hs-app-secret-value'" }],
      check: checkNoSecretsInSettings,
      expect: /HUBSPOT_CLIENT_SECRET holds a secret but its value is not a Key Vault reference/,
    },
    {
      what: 'a Key Vault reference is always on (before the operator can have set the secret)',
      edits: [
        { file: FA, from: /\n  TEAMS_WEBHOOK_URL: [^\n]*/, to: '\n  X_UNUSED: 1' },
        { file: FA, from: '  LOG_LEVEL: logLevel\n', to: "  LOG_LEVEL: logLevel\n  TEAMS_WEBHOOK_URL: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${secretNames.teamsWebhookUrl})'\n" },
      ],
      check: checkNoSecretsInSettings,
      expect: /TEAMS_WEBHOOK_URL is a Key Vault reference in the unconditional group/,
    },
    {
      what: 'a setting the schema reads is not set',
      edits: [{ file: FA, from: '  LOG_LEVEL: logLevel\n', to: '' }],
      check: checkAppSettingsCoverSchema,
      expect: /LOG_LEVEL is read by src\/config\/schema.ts but neither set/,
    },
    {
      what: 'a deprecated Flex setting is set',
      edits: [{ file: FA, from: '  LOG_LEVEL: logLevel\n', to: "  LOG_LEVEL: logLevel\n  FUNCTIONS_WORKER_RUNTIME: 'node'\n" }],
      check: checkAppSettingsCoverSchema,
      expect: /FUNCTIONS_WORKER_RUNTIME must not be set/,
    },
    {
      what: 'the HubSpot redirect URI is set while HubSpot OAuth is off (the schema wants all three or none)',
      edits: [
        { file: FA, from: /\n  HUBSPOT_REDIRECT_URI: [^\n]*/, to: '' },
        { file: FA, from: '  LOG_LEVEL: logLevel\n', to: "  LOG_LEVEL: logLevel\n  HUBSPOT_REDIRECT_URI: '${publicBaseUrl}${routes.hubspotOAuthCallback}'\n" },
      ],
      check: checkSettingsParse,
      expect: /with no optional group switched on, the app settings fail the config schema: HUBSPOT_CLIENT_ID/,
    },
    {
      what: 'a role id is not one from the facts sheet (Blob Data Contributor instead of Owner)',
      edits: [{ file: 'infra/app/rbac.bicep', from: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b', to: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' }],
      check: checkRoleAssignments,
      expect: /ba92f5b4-2d11-453d-a403-e96b0029c9fe, which is not one of the role definition ids[\s\S]*missing role assignment: appPrincipalId \| Storage Blob Data Owner/,
    },
    {
      what: 'the operator gets no Key Vault role',
      edits: [{ file: 'infra/app/rbac.bicep', from: /resource operatorKeyVaultSecretsOfficer[\s\S]*$/, to: '' }],
      check: checkRoleAssignments,
      expect: /missing role assignment: operatorPrincipalId \| Key Vault Secrets Officer/,
    },
    {
      what: 'a role assignment is made twice',
      edits: [
        {
          file: 'infra/app/rbac.bicep',
          from: '// --- operator',
          to: "resource extra 'Microsoft.Authorization/roleAssignments@2022-04-01' = {\n  name: guid(vault.id, appPrincipalId, 'x')\n  scope: vault\n  properties: {\n    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)\n    principalId: appPrincipalId\n    principalType: 'ServicePrincipal'\n  }\n}\n\n// --- operator",
        },
      ],
      check: checkRoleAssignments,
      expect: /role assignment made twice: appPrincipalId \| Key Vault Secrets Officer/,
    },
    {
      what: 'the app identity gets a role nobody asked for',
      edits: [
        {
          file: 'infra/app/rbac.bicep',
          from: '// --- operator',
          to: "resource extra 'Microsoft.Authorization/roleAssignments@2022-04-01' = {\n  name: guid(vault.id, appPrincipalId, '4633458b-17de-408a-b874-0445c86b69e6')\n  scope: vault\n  properties: {\n    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')\n    principalId: appPrincipalId\n    principalType: 'ServicePrincipal'\n  }\n}\n\n// --- operator",
        },
      ],
      check: checkRoleAssignments,
      expect: /unexpected role assignment: appPrincipalId \| Key Vault Secrets User \| Microsoft.KeyVault\/vaults/,
    },
    {
      what: 'main.bicep passes a parameter the module does not declare',
      edits: [{ file: 'infra/main.bicep', from: '    logLevel: logLevel\n', to: '    logLevell: logLevel\n' }],
      check: checkModuleWiring,
      expect: /passes logLevell[\s\S]*does not pass the required parameter logLevel/,
    },
    {
      what: 'an output is named like an app setting',
      edits: [{ file: 'infra/main.bicep', from: 'output AZURE_KEY_VAULT_ENDPOINT string', to: 'output KEY_VAULT_URI string' }],
      check: checkOutputs,
      expect: /output KEY_VAULT_URI is named like an app setting[\s\S]*must output AZURE_KEY_VAULT_ENDPOINT|must output AZURE_KEY_VAULT_ENDPOINT[\s\S]*output KEY_VAULT_URI is named like an app setting/,
    },
    {
      what: 'host.json uses an extension bundle older than 4',
      edits: [{ file: 'host.json', from: '"[4.*, 5.0.0)"', to: '"[3.*, 4.0.0)"' }],
      check: checkHostJson,
      expect: /must be \[4\.\*, 5\.0\.0\) or later/,
    },
    {
      what: 'azure.yaml asks for a remote build that .funcignore cannot give',
      edits: [{ file: '.funcignore', from: /^node_modules$/m, to: '' }],
      check: checkAzureYaml,
      expect: /remoteBuild: true needs \.funcignore to exclude node_modules/,
    },
    {
      what: '.funcignore drops the sources a remote build needs',
      edits: [{ file: '.funcignore', from: /^dist$/m, to: 'src' }],
      check: checkAzureYaml,
      expect: /needs src, but \.funcignore excludes it/,
    },
    {
      what: 'local.settings.sample.json misses a setting',
      edits: [
        {
          file: 'local.settings.sample.json',
          from: /^[\s\S]*$/,
          to: JSON.stringify({ IsEncrypted: false, Values: Object.fromEntries(Object.keys(envSchema.shape).filter((k) => k !== 'GRAPH_BASE_URL').map((k) => [k, ''])) }),
        },
      ],
      check: checkLocalSettingsSample,
      expect: /does not list GRAPH_BASE_URL/,
    },
    {
      what: 'a function route differs from the one infra/ publishes',
      edits: [
        {
          file: 'src/functions/webhooks.ts',
          from: /^[\s\S]*$/,
          to: "route: 'hubspot/oauth/callback'; route: 'webhooks/hubspot'; route: 'webhooks/graph'; route: 'webhooks/msgraph/lifecycle';",
        },
      ],
      check: checkRoutesRegistered,
      expect: /no function in src\/functions registers route 'webhooks\/graph\/lifecycle'/,
    },
  ];

  cases.push(
    {
      what: "the worker's heap differs from the benchmark's for an instance size",
      edits: [{ file: FA, from: "'2048': '--max-old-space-size=1024 --max-semi-space-size=8'", to: "'2048': '--max-old-space-size=4096 --max-semi-space-size=8'" }],
      check: checkNodeHeap,
      expect: /nodeHeapOptions\['2048'\] is '--max-old-space-size=4096 --max-semi-space-size=8', the benchmark's heap for 2048 MB is '--max-old-space-size=1024 --max-semi-space-size=8'/,
    },
    {
      what: 'an allowed instance size has no heap entry',
      edits: [{ file: 'infra/main.bicep', from: /@allowed\(\[\n  512\n/, to: '@allowed([\n  512\n  1024\n' }],
      check: checkNodeHeap,
      expect: /nodeHeapOptions has no entry for an instance of 1024 MB/,
    },
    {
      what: 'NODE_OPTIONS is not taken from the heap table',
      edits: [{ file: FA, from: 'NODE_OPTIONS: nodeHeapOptions[string(instanceMemoryMB)]', to: "NODE_OPTIONS: '--max-old-space-size=8192'" }],
      check: checkNodeHeap,
      expect: /NODE_OPTIONS/,
    },
  );

  it.each(cases.map((c) => [c.what, c] as const))('%s', (_what, c) => {
    const problems = c.check(brokenCopy(...c.edits));
    expect(problems.join('\n')).toMatch(c.expect);
  });

  it('an unbroken copy passes every check (the copies differ only by their edits)', () => {
    const copy = brokenCopy();
    for (const check of [checkTablesAndQueues, checkBlobLifecycle, checkNodeHeap, checkAppSettingsCoverSchema, checkNoSecretsInSettings, checkRoleAssignments, checkResourceProperties, checkModuleWiring, checkOutputs, checkSettingsParse, checkHostJson, checkAzureYaml]) {
      expect({ check: check.name, problems: check(copy) }).toEqual({ check: check.name, problems: [] });
    }
  });

  it('a complete local.settings.sample.json and matching routes pass', () => {
    const copy = brokenCopy(
      { file: 'local.settings.sample.json', from: /^[\s\S]*$/, to: JSON.stringify({ IsEncrypted: false, Values: { FUNCTIONS_WORKER_RUNTIME: 'node', ...Object.fromEntries(Object.keys(envSchema.shape).map((k) => [k, ''])) } }) },
      { file: 'src/functions/webhooks.ts', from: /^[\s\S]*$/, to: "route: 'hubspot/oauth/callback'; route: 'webhooks/hubspot'; route: 'webhooks/graph'; route: 'webhooks/graph/lifecycle';" },
    );
    expect(checkLocalSettingsSample(copy)).toEqual([]);
    expect(checkRoutesRegistered(copy)).toEqual([]);
  });

  it('the Bicep reader refuses what it cannot read instead of passing it', () => {
    expect(() => parseBicep('x.bicep', "var a = 'unterminated\n")).toThrow(/unterminated/);
    expect(() => parseBicep('x.bicep', 'resource x \'T@1\' = {\n  a: {\n}\n')).toThrow();
    expect(() => parseBicep('x.bicep', 'something odd\n')).toThrow(/cannot read the statement/);
  });
});
