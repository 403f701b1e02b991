/**
 * The checks that hold infra/ (and azure.yaml, host.json, local.settings.sample.json) in step with the code.
 * Each check reads a repository folder as text and returns a list of problems; an empty list means it holds.
 * They take the folder as an argument so the test can also run them on deliberately broken copies and see
 * each of them fail.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { instanceHeap } from '../../../bench/hubspotSync/instanceHeap';
import { envSchema } from '../../../src/config/schema';
import { ALL_BLOB_CONTAINERS, ALL_QUEUES, ALL_TABLES, BLOB_CONTAINERS } from '../../../src/storage/names';
import {
  at,
  type BicepFile,
  type BicepValue,
  decoratorValue,
  objectsIn,
  parseBicep,
  rawAt,
  type ResourceDecl,
  stringItems,
  stringLiteral,
} from './bicep-text';

// ---------------------------------------------------------------------------------------------------------------
// Reference data
// ---------------------------------------------------------------------------------------------------------------

/** Built-in role definition ids, as listed in the facts sheet (shared/reference/azure.md §4, "Role definition IDs"). */
export const KNOWN_ROLE_IDS: Readonly<Record<string, string>> = {
  'Storage Blob Data Owner': 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  'Storage Queue Data Contributor': '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  'Storage Table Data Contributor': '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  'Monitoring Metrics Publisher': '3913510d-42f4-4e42-8a64-420c390055eb',
  'Key Vault Secrets User': '4633458b-17de-408a-b874-0445c86b69e6',
  'Key Vault Secrets Officer': 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
};

/** Exactly the role assignments infra/ must make: [principal param, role, type of the scope resource]. */
export const EXPECTED_ROLE_ASSIGNMENTS: ReadonlyArray<readonly [string, string, string]> = [
  // Blob Data Owner on the account: host storage, and our claim-check writes to engine-event-data.
  ['appPrincipalId', 'Storage Blob Data Owner', 'Microsoft.Storage/storageAccounts'],
  ['appPrincipalId', 'Storage Queue Data Contributor', 'Microsoft.Storage/storageAccounts'],
  ['appPrincipalId', 'Storage Table Data Contributor', 'Microsoft.Storage/storageAccounts'],
  ['appPrincipalId', 'Monitoring Metrics Publisher', 'Microsoft.Insights/components'],
  ['appPrincipalId', 'Key Vault Secrets Officer', 'Microsoft.KeyVault/vaults'],
  ['operatorPrincipalId', 'Key Vault Secrets Officer', 'Microsoft.KeyVault/vaults'],
];

/**
 * Settings the config schema reads that Azure deliberately does NOT get as app settings, with the reason.
 * Every other schema key must be set in infra/app/functionapp.bicep.
 */
export const NOT_SET_IN_AZURE: Readonly<Record<string, string>> = {
  AzureWebJobsStorage: 'connection-string form; Azure uses the identity-based AzureWebJobsStorage__* settings (shared keys are off)',
  AzureWebJobsStorage__accountName: 'alternative to AzureWebJobsStorage__*ServiceUri, which Azure sets explicitly',
  LOCAL_SECRET_KEY: 'local secret store only; Azure sets KEY_VAULT_URI',
  LOCAL_SECRET_DIR: 'local secret store only; Azure sets KEY_VAULT_URI',
  API_JWT_SECRET: 'local HS256 tokens only; Azure verifies against API_JWT_JWKS_URI',
  API_JWT_TYP: "optional: set it when the issuer stamps a typ (e.g. at+jwt); unset accepts none, JWT or at+jwt",
  WEBSITE_INSTANCE_ID: 'provided by the platform',
  WEBSITE_SITE_NAME: 'provided by the platform',
  CONTAINER_APP_NAME: 'provided by the platform',
  IDENTITY_ENDPOINT: 'provided by the platform',
  TEAMS_ALLOW_LOOPBACK_WEBHOOKS: 'tests and local runs only (a fake Teams on loopback); the app refuses to start in Azure with it on',
  AzureFunctionsJobHost__functionTimeout: "the host's own override of host.json; unset, host.json's 10 min applies to the host and the app alike (set it only to change both)",
  TEAMS_WEBHOOK_RATE_WINDOWS: "tests and local runs only (windows shrunk so a scale-out test runs in seconds); unset, Teams' documented limits apply",
};

/**
 * Schema settings only Azure uses: identity-based storage. Locally AzureWebJobsStorage holds the Azurite
 * connection string instead, so local.settings.sample.json need not list them.
 */
export const AZURE_ONLY_SETTINGS: Readonly<Record<string, string>> = {
  AzureWebJobsStorage__accountName: 'identity-based storage (Azure)',
  AzureWebJobsStorage__tableServiceUri: 'identity-based storage (Azure)',
  AzureWebJobsStorage__queueServiceUri: 'identity-based storage (Azure)',
  AzureWebJobsStorage__blobServiceUri: 'identity-based storage (Azure)',
  AzureWebJobsStorage__clientId: 'identity-based storage (Azure)',
  AzureWebJobsStorage__credential: 'identity-based storage (Azure)',
};

/** App settings infra/ may set that the schema does not read (they are for the host or the Azure SDK). */
export const HOST_SETTINGS: Readonly<Record<string, string>> = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: 'Functions host: telemetry destination',
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Functions host: Entra-authenticated telemetry with the identity',
  AZURE_CLIENT_ID: 'Azure SDK DefaultAzureCredential: which user-assigned identity to use',
  NODE_OPTIONS: "Node.js: the V8 heap sized for the instance's memory (the heap the benchmark measures)",
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: 'Functions host: largest request body it buffers before invoking (the local runner reads it too)',
};

/** Deprecated on Flex Consumption (functions-app-settings.md#flex-consumption-plan-deprecations) or secret-bearing. */
export const FORBIDDEN_SETTINGS = [
  'FUNCTIONS_WORKER_RUNTIME',
  'FUNCTIONS_WORKER_RUNTIME_VERSION',
  'FUNCTIONS_EXTENSION_VERSION',
  'WEBSITE_NODE_DEFAULT_VERSION',
  'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
  'WEBSITE_CONTENTSHARE',
  'WEBSITE_RUN_FROM_PACKAGE',
  'SCM_DO_BUILD_DURING_DEPLOYMENT',
  'ENABLE_ORYX_BUILD',
  'AzureWebJobsStorage',
  'APPINSIGHTS_INSTRUMENTATIONKEY',
] as const;

/** Site properties that are deprecated or invalid on Flex Consumption. */
const FORBIDDEN_SITE_PROPERTIES = ['linuxFxVersion', 'alwaysOn', 'ftpsState', 'use32BitWorkerProcess', 'functionAppScaleLimit', 'preWarmedInstanceCount'];

/** Public addresses the functions must serve (outputs, HubSpot redirect URI). */
export const EXPECTED_ROUTES: Readonly<Record<string, string>> = {
  hubspotOAuthCallback: '/api/hubspot/oauth/callback',
  hubspotWebhook: '/api/webhooks/hubspot',
  graphNotifications: '/api/webhooks/graph',
  graphLifecycleNotifications: '/api/webhooks/graph/lifecycle',
};

export const SECRET_SETTING = /SECRET|WEBHOOK_URL|PASSWORD|TOKEN|_KEY$/;

// ---------------------------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------------------------

export interface Repo {
  root: string;
  bicep: Map<string, BicepFile>;
  read(rel: string): string | undefined;
}

function bicepPaths(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return bicepPaths(full);
    return name.endsWith('.bicep') ? [full] : [];
  });
}

export function loadRepo(root: string): Repo {
  const bicep = new Map<string, BicepFile>();
  for (const full of bicepPaths(path.join(root, 'infra'))) {
    const rel = path.relative(root, full).split(path.sep).join('/');
    bicep.set(rel, parseBicep(rel, readFileSync(full, 'utf8')));
  }
  return {
    root,
    bicep,
    read: (rel) => (existsSync(path.join(root, rel)) ? readFileSync(path.join(root, rel), 'utf8') : undefined),
  };
}

function file(repo: Repo, rel: string, problems: string[]): BicepFile | undefined {
  const f = repo.bicep.get(rel);
  if (!f) problems.push(`${rel} is missing`);
  return f;
}

function resourcesOf(repo: Repo, type: string, includeExisting = false): Array<ResourceDecl & { file: BicepFile }> {
  return [...repo.bicep.values()].flatMap((f) =>
    f.resources.filter((r) => r.type.toLowerCase() === type.toLowerCase() && (includeExisting || !r.existing)).map((r) => ({ ...r, file: f })),
  );
}

function single(repo: Repo, type: string, problems: string[]): (ResourceDecl & { file: BicepFile }) | undefined {
  const found = resourcesOf(repo, type);
  if (found.length !== 1) {
    problems.push(`expected exactly one ${type} declared in infra/, found ${found.length}`);
    return undefined;
  }
  return found[0];
}

function expectRaw(problems: string[], what: string, actual: string | undefined, expected: string): void {
  if (actual === undefined) problems.push(`${what} is not set (expected ${expected})`);
  else if (actual.trim() !== expected) problems.push(`${what} is ${actual.trim()} (expected ${expected})`);
}

function diff(actual: readonly string[], expected: readonly string[]): { missing: string[]; extra: string[] } {
  return { missing: expected.filter((x) => !actual.includes(x)), extra: actual.filter((x) => !expected.includes(x)) };
}

// ---------------------------------------------------------------------------------------------------------------
// Tables and queues
// ---------------------------------------------------------------------------------------------------------------

export function checkTablesAndQueues(repo: Repo): string[] {
  const problems: string[] = [];
  const storage = file(repo, 'infra/app/storage.bicep', problems);
  if (!storage) return problems;

  const kinds = [
    { what: 'table', varName: 'tableNames', type: 'Microsoft.Storage/storageAccounts/tableServices/tables', expected: ALL_TABLES, pattern: /^[A-Za-z][A-Za-z0-9]{2,62}$/ },
    { what: 'queue', varName: 'queueNames', type: 'Microsoft.Storage/storageAccounts/queueServices/queues', expected: ALL_QUEUES, pattern: /^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/ },
    { what: 'blob container', varName: 'blobContainerNames', type: 'Microsoft.Storage/storageAccounts/blobServices/containers', expected: ALL_BLOB_CONTAINERS, pattern: /^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/ },
  ];
  // The deployment package's container is named by a parameter and belongs to the platform, not the code.
  const isDeploymentContainer = (r: ResourceDecl & { file: BicepFile }) => r.type.toLowerCase().endsWith('/containers') && r.file.params.has(rawAt(r.body, 'name') ?? '');
  for (const kind of kinds) {
    const declared = stringItems(storage.vars.get(kind.varName));
    if (!declared) {
      problems.push(`storage.bicep: var ${kind.varName} must be an array of plain string literals`);
      continue;
    }
    const resources = resourcesOf(repo, kind.type);
    const loop = resources.find((r) => new RegExp(`^\\[\\s*for\\s+(\\w+)\\s+in\\s+${kind.varName}\\s*:`).test(r.head));
    if (!loop) problems.push(`no ${kind.type} resource loops over ${kind.varName}`);
    else {
      const itemVar = /for\s+(\w+)\s+in/.exec(loop.head)?.[1] as string;
      expectRaw(problems, `${kind.what} loop name`, rawAt(loop.body, 'name'), itemVar);
    }
    // Any other declaration of this type must name a literal that we count too.
    const names = [...declared];
    for (const r of resources.filter((x) => x !== loop && !isDeploymentContainer(x))) {
      const literal = stringLiteral(rawAt(r.body, 'name'));
      if (literal === undefined) problems.push(`${r.file.rel}: ${kind.what} resource ${r.symbol} has a name that cannot be read as text`);
      else names.push(literal);
    }
    const allowedExtra = kind.what === 'queue' ? kind.expected.map((q) => `${q}-poison`) : [];
    const { missing, extra } = diff(names, kind.expected);
    for (const m of missing) problems.push(`${kind.what} "${m}" is used by the code (src/storage/names.ts) but not declared in infra/`);
    for (const e of extra.filter((x) => !allowedExtra.includes(x))) problems.push(`${kind.what} "${e}" is declared in infra/ but the code does not use it`);
    for (const n of names) if (!kind.pattern.test(n)) problems.push(`${kind.what} name "${n}" is not a valid Azure ${kind.what} name`);
    const dupes = names.filter((n, i) => names.indexOf(n) !== i);
    for (const d of dupes) problems.push(`${kind.what} "${d}" is declared twice`);
  }

  // The deployment package container exists and is the one the function app deploys from.
  const containers = resourcesOf(repo, 'Microsoft.Storage/storageAccounts/blobServices/containers').filter(isDeploymentContainer);
  if (containers.length !== 1) problems.push(`expected one blob container named by a parameter (the deployment package), found ${containers.length}`);
  else {
    const containerParam = rawAt(containers[0]?.body, 'name');
    const site = resourcesOf(repo, 'Microsoft.Web/sites')[0];
    const deployValue = rawAt(site?.body, 'properties', 'functionAppConfig', 'deployment', 'storage', 'value');
    if (!containerParam || !deployValue?.includes(`\${${containerParam}}`)) {
      problems.push(`the function app's deployment storage (${deployValue}) does not point at the declared container (${containerParam})`);
    }
  }
  return problems;
}

/** engine-events messages live this long (the queue default TTL; the publisher sets none). */
export const ENGINE_EVENT_MESSAGE_TTL_DAYS = 7;

/**
 * The claim-check container's blobs expire: a lifecycle rule deletes block blobs under `engine-event-data/` a
 * number of days after their last write, taken from a parameter that cannot be set below the messages' life
 * (a dataref must not outlive its blob), and the parameter says so.
 */
export function checkBlobLifecycle(repo: Repo): string[] {
  const problems: string[] = [];
  const policies = resourcesOf(repo, 'Microsoft.Storage/storageAccounts/managementPolicies');
  if (policies.length !== 1) return [`expected one storage lifecycle management policy, found ${policies.length}`];
  const policy = policies[0] as ResourceDecl & { file: BicepFile };
  expectRaw(problems, 'lifecycle policy name', rawAt(policy.body, 'name'), "'default'");
  const storage = policy.file.resources.find((r) => r.type === 'Microsoft.Storage/storageAccounts');
  expectRaw(problems, 'lifecycle policy parent', rawAt(policy.body, 'parent'), storage?.symbol ?? '<the storage account>');

  const rules = at(policy.body, 'properties', 'policy', 'rules');
  const prefix = `${BLOB_CONTAINERS.engineEventData}/`;
  const rule = rules?.kind === 'array' ? rules.items.find((r) => stringItems(at(r, 'definition', 'filters', 'prefixMatch'))?.includes(prefix)) : undefined;
  if (!rule) return [...problems, `no lifecycle rule matches the prefix '${prefix}'`];
  expectRaw(problems, 'engine-event-data rule enabled', rawAt(rule, 'enabled'), 'true');
  expectRaw(problems, 'engine-event-data rule type', rawAt(rule, 'type'), "'Lifecycle'");
  const prefixes = stringItems(at(rule, 'definition', 'filters', 'prefixMatch')) ?? [];
  if (prefixes.length !== 1) problems.push(`the engine-event-data rule must match only '${prefix}' (matches ${prefixes.join(', ')})`);
  if (!(stringItems(at(rule, 'definition', 'filters', 'blobTypes')) ?? []).includes('blockBlob')) problems.push('the engine-event-data rule must apply to block blobs');
  const days = rawAt(rule, 'definition', 'actions', 'baseBlob', 'delete', 'daysAfterModificationGreaterThan');
  const param = days === undefined ? undefined : policy.file.params.get(days.trim());
  if (!param) {
    problems.push(`the engine-event-data rule must delete by daysAfterModificationGreaterThan from a parameter (is ${days ?? 'unset'})`);
    return problems;
  }
  const byName = (name: string) => param.decorators.find((d) => d.name === name);
  const minValue = byName('minValue');
  const min = minValue ? Number(rawAt(decoratorValue(minValue)) ?? NaN) : NaN;
  if (!(min > ENGINE_EVENT_MESSAGE_TTL_DAYS)) problems.push(`parameter ${param.name} must have @minValue above the ${ENGINE_EVENT_MESSAGE_TTL_DAYS}-day message lifetime (is ${minValue ? min : 'unset'})`);
  const def = Number(param.default?.raw ?? NaN);
  if (!(def > ENGINE_EVENT_MESSAGE_TTL_DAYS)) problems.push(`parameter ${param.name} must default to more than ${ENGINE_EVENT_MESSAGE_TTL_DAYS} days (is ${param.default?.raw ?? 'unset'})`);
  if (!byName('description')) problems.push(`parameter ${param.name} must be described`);
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// App settings
// ---------------------------------------------------------------------------------------------------------------

export interface SettingsGroup {
  name: string;
  /** undefined for the group that is always applied; else the condition text. */
  condition?: string;
  settings: Map<string, string>;
}

/** The app settings groups merged into the function app's `appsettings` config resource. */
export function appSettingsGroups(repo: Repo, problems: string[]): SettingsGroup[] {
  const fa = file(repo, 'infra/app/functionapp.bicep', problems);
  if (!fa) return [];
  const config = fa.resources.filter((r) => r.type === 'Microsoft.Web/sites/config' && stringLiteral(rawAt(r.body, 'name')) === 'appsettings');
  if (config.length !== 1) {
    problems.push(`functionapp.bicep must declare exactly one Microsoft.Web/sites/config 'appsettings' resource (found ${config.length})`);
    return [];
  }
  const props = at(config[0]?.body, 'properties');
  if (!props) {
    problems.push('the appsettings resource has no properties');
    return [];
  }
  const parts: Array<{ name: string; value: BicepValue }> = [];
  if (props.kind === 'object') parts.push({ name: 'properties', value: props });
  else {
    const m = /^union\(([\s\S]*)\)$/.exec(props.raw);
    if (!m) {
      problems.push(`appsettings properties must be an object or union(var, ...); got ${props.raw}`);
      return [];
    }
    for (const id of (m[1] as string).split(',').map((s) => s.trim())) {
      const value = fa.vars.get(id);
      if (!value) problems.push(`appsettings merges ${id}, which is not a var in functionapp.bicep`);
      else parts.push({ name: id, value });
    }
  }
  const groups: SettingsGroup[] = [];
  for (const part of parts) {
    const objects = objectsIn(fa, part.value).filter((o) => o.entries.size > 0);
    if (objects.length !== 1) {
      problems.push(`settings group ${part.name} must hold one non-empty object literal (found ${objects.length})`);
      continue;
    }
    const settings = new Map<string, string>();
    for (const [k, v] of (objects[0] as Extract<BicepValue, { kind: 'object' }>).entries) settings.set(k, v.raw);
    const condition = part.value.kind === 'object' ? undefined : part.value.raw.slice(0, part.value.raw.indexOf('?')).trim();
    if (condition === '') problems.push(`settings group ${part.name}: cannot read its condition`);
    groups.push({ name: part.name, ...(condition === undefined ? {} : { condition }), settings });
  }
  return groups;
}

export function checkAppSettingsCoverSchema(repo: Repo): string[] {
  const problems: string[] = [];
  const groups = appSettingsGroups(repo, problems);
  if (groups.length === 0) return problems.length ? problems : ['no app settings found'];
  const setKeys = groups.flatMap((g) => [...g.settings.keys()]);
  const schemaKeys = Object.keys(envSchema.shape);

  for (const key of schemaKeys) {
    const isSet = setKeys.includes(key);
    const documented = key in NOT_SET_IN_AZURE;
    if (!isSet && !documented) problems.push(`${key} is read by src/config/schema.ts but neither set in functionapp.bicep nor listed in NOT_SET_IN_AZURE`);
    if (isSet && documented) problems.push(`${key} is set in functionapp.bicep but listed in NOT_SET_IN_AZURE as not set`);
  }
  for (const key of Object.keys(NOT_SET_IN_AZURE)) {
    if (!schemaKeys.includes(key)) problems.push(`NOT_SET_IN_AZURE lists ${key}, which the config schema no longer reads`);
  }
  for (const key of setKeys) {
    if (!schemaKeys.includes(key) && !(key in HOST_SETTINGS)) problems.push(`app setting ${key} is neither read by the config schema nor a known host/SDK setting (typo?)`);
  }
  const dupes = setKeys.filter((k, i) => setKeys.indexOf(k) !== i);
  for (const d of dupes) problems.push(`app setting ${d} is set in more than one group`);
  for (const key of FORBIDDEN_SETTINGS) {
    if (setKeys.includes(key)) problems.push(`app setting ${key} must not be set on Flex Consumption / with identity-based storage`);
  }

  const core = groups.find((g) => g.condition === undefined);
  if (!core) problems.push('no unconditional settings group');
  else {
    expectRaw(problems, 'AzureWebJobsStorage__credential', core.settings.get('AzureWebJobsStorage__credential'), "'managedidentity'");
    for (const k of ['AzureWebJobsStorage__clientId', 'AzureWebJobsStorage__blobServiceUri', 'AzureWebJobsStorage__queueServiceUri', 'AzureWebJobsStorage__tableServiceUri', 'AZURE_CLIENT_ID', 'KEY_VAULT_URI', 'PUBLIC_BASE_URL']) {
      if (!core.settings.has(k)) problems.push(`${k} must always be set`);
    }
    const clientId = core.settings.get('AzureWebJobsStorage__clientId');
    if (clientId !== undefined && core.settings.get('AZURE_CLIENT_ID') !== clientId) {
      problems.push('AZURE_CLIENT_ID must be the same identity as AzureWebJobsStorage__clientId');
    }
    const auth = core.settings.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING') ?? '';
    if (!/^'ClientId=\$\{[^}]+\};Authorization=AAD;?'$/.test(auth)) problems.push(`APPLICATIONINSIGHTS_AUTHENTICATION_STRING must be 'ClientId=<identity>;Authorization=AAD' (is ${auth || 'unset'})`);
    if (clientId !== undefined && !auth.includes(`\${${clientId}}`)) problems.push('APPLICATIONINSIGHTS_AUTHENTICATION_STRING must use the app identity\'s client id');
  }
  return problems;
}

/** Values for *SECRET* / *WEBHOOK_URL* settings are Key Vault references; nothing in infra/ produces a secret. */
export function checkNoSecretsInSettings(repo: Repo): string[] {
  const problems: string[] = [];
  const groups = appSettingsGroups(repo, problems);
  const fa = repo.bicep.get('infra/app/functionapp.bicep');
  const vault = fa?.resources.find((r) => r.type === 'Microsoft.KeyVault/vaults');
  const secretNames = at(fa?.vars.get('secretNames'));
  const knownSecretNames = secretNames?.kind === 'object' ? [...secretNames.entries.values()].map((v) => stringLiteral(v.raw)) : [];
  if (knownSecretNames.length === 0 || knownSecretNames.some((n) => n === undefined)) problems.push('functionapp.bicep: var secretNames must map to plain string literals');

  for (const g of groups) {
    for (const [key, raw] of g.settings) {
      const isReference = raw.startsWith("'@Microsoft.KeyVault(");
      if (SECRET_SETTING.test(key) && !isReference) problems.push(`${key} holds a secret but its value is not a Key Vault reference: ${raw}`);
      if (isReference) {
        const m = /^'@Microsoft\.KeyVault\(VaultName=\$\{(\w+)\.name\};SecretName=\$\{secretNames\.(\w+)\}\)'$/.exec(raw);
        if (!m) problems.push(`${key}: Key Vault reference must read '@Microsoft.KeyVault(VaultName=\${vault.name};SecretName=\${secretNames.<name>})' (is ${raw})`);
        else {
          if (!vault || m[1] !== vault.symbol) problems.push(`${key}: the reference must name the vault resource of functionapp.bicep`);
          if (secretNames?.kind !== 'object' || !secretNames.entries.has(m[2] as string)) problems.push(`${key}: secretNames has no entry ${m[2]}`);
        }
        if (g.condition === undefined) problems.push(`${key} is a Key Vault reference in the unconditional group; it would reach the app as literal text until the operator sets the secret`);
      }
      const literal = stringLiteral(raw);
      if (literal !== undefined && (/^[A-Za-z0-9+/=_-]{32,}$/.test(literal) || /AccountKey=|SharedAccessSignature=|sig=/i.test(literal))) {
        problems.push(`${key} holds a literal that looks like a credential`);
      }
    }
  }

  for (const [rel, f] of repo.bicep) {
    if (/\blistKeys\s*\(|\.listKeys\(|\blistSecrets\s*\(|\blistConnectionStrings\s*\(|AccountKey=|SharedAccessSignature=/.test(f.code)) {
      problems.push(`${rel} reads or builds a key, SAS or connection string`);
    }
    for (const r of f.resources) {
      if (r.type.toLowerCase() === 'microsoft.keyvault/vaults/secrets') problems.push(`${rel} declares a Key Vault secret (${r.symbol}); secret values must not pass through the template`);
    }
  }

  const docs = repo.read('README.md');
  for (const name of knownSecretNames) {
    if (name && (!docs || !docs.includes(name))) problems.push(`README.md does not tell the operator to set the Key Vault secret "${name}"`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Role assignments
// ---------------------------------------------------------------------------------------------------------------

export function checkRoleAssignments(repo: Repo): string[] {
  const problems: string[] = [];
  const known = Object.values(KNOWN_ROLE_IDS);
  const guid = /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/g;
  for (const [rel, f] of repo.bicep) {
    for (const m of f.code.matchAll(guid)) {
      if (!known.includes(m[0].toLowerCase())) problems.push(`${rel} uses ${m[0]}, which is not one of the role definition ids in the facts sheet`);
    }
  }

  const found: string[] = [];
  for (const r of resourcesOf(repo, 'Microsoft.Authorization/roleAssignments')) {
    const where = `${r.file.rel}: ${r.symbol}`;
    const roleRaw = rawAt(r.body, 'properties', 'roleDefinitionId') ?? '';
    const roleMatch = /^subscriptionResourceId\('Microsoft\.Authorization\/roleDefinitions',\s*(.+)\)$/.exec(roleRaw);
    if (!roleMatch) {
      problems.push(`${where}: roleDefinitionId must be subscriptionResourceId('Microsoft.Authorization/roleDefinitions', <id>) (is ${roleRaw})`);
      continue;
    }
    const idExpr = (roleMatch[1] as string).trim();
    let id = stringLiteral(idExpr);
    const viaVar = /^(\w+)\.(\w+)$/.exec(idExpr);
    if (id === undefined && viaVar) id = stringLiteral(rawAt(r.file.vars.get(viaVar[1] as string), viaVar[2] as string));
    const role = Object.entries(KNOWN_ROLE_IDS).find(([, v]) => v === id?.toLowerCase())?.[0];
    if (!role) {
      problems.push(`${where}: role ${idExpr} does not resolve to a known role id`);
      continue;
    }
    const scopeSymbol = rawAt(r.body, 'scope');
    const scope = r.file.resources.find((x) => x.symbol === scopeSymbol);
    if (!scope) {
      problems.push(`${where}: scope ${scopeSymbol} is not a resource of the same file`);
      continue;
    }
    const principal = rawAt(r.body, 'properties', 'principalId') ?? '';
    if (!r.file.params.has(principal)) problems.push(`${where}: principalId ${principal} is not a parameter`);
    if (principal === 'appPrincipalId') expectRaw(problems, `${where} principalType`, rawAt(r.body, 'properties', 'principalType'), "'ServicePrincipal'");
    const name = rawAt(r.body, 'name') ?? '';
    if (!name.startsWith('guid(') || !name.includes(principal) || !name.includes(`${scope.symbol}.id`)) {
      problems.push(`${where}: name must be guid(<scope>.id, <principal>, <role>) so that it is stable and unique (is ${name})`);
    }
    found.push([principal, role, scope.type].join(' | '));
  }
  const expected = EXPECTED_ROLE_ASSIGNMENTS.map((x) => x.join(' | '));
  const { missing, extra } = diff(found, expected);
  for (const m of missing) problems.push(`missing role assignment: ${m}`);
  for (const e of extra) problems.push(`unexpected role assignment: ${e}`);
  for (const d of found.filter((x, i) => found.indexOf(x) !== i)) problems.push(`role assignment made twice: ${d}`);

  // Who the principals are: the app identity, and the operator from azd's AZURE_PRINCIPAL_ID.
  const main = repo.bicep.get('infra/main.bicep');
  const rbac = main?.modules.find((m) => m.path.endsWith('/rbac.bicep'));
  const appPrincipal = rawAt(rbac?.body, 'params', 'appPrincipalId');
  if (!appPrincipal || !/^\w+\.outputs\.principalId$/.test(appPrincipal)) problems.push(`main.bicep must pass the identity module's principalId as appPrincipalId (is ${appPrincipal})`);
  else {
    const identityModule = main?.modules.find((m) => m.symbol === appPrincipal.split('.')[0]);
    const identityFile = identityModule && repo.bicep.get(path.posix.join('infra', identityModule.path.replace(/^\.\//, '')));
    if (!identityFile?.resources.some((x) => x.type === 'Microsoft.ManagedIdentity/userAssignedIdentities' && !x.existing)) {
      problems.push('appPrincipalId does not come from a module that declares a user-assigned identity');
    }
  }
  expectRaw(problems, 'main.bicep rbac operatorPrincipalId', rawAt(rbac?.body, 'params', 'operatorPrincipalId'), 'principalId');
  const parameters = JSON.parse(repo.read('infra/main.parameters.json') ?? '{}') as { parameters?: Record<string, { value?: unknown }> };
  if (parameters.parameters?.principalId?.value !== '${AZURE_PRINCIPAL_ID}') problems.push('main.parameters.json must map principalId to ${AZURE_PRINCIPAL_ID}');
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Resource properties
// ---------------------------------------------------------------------------------------------------------------

export function checkResourceProperties(repo: Repo): string[] {
  const problems: string[] = [];

  const storage = single(repo, 'Microsoft.Storage/storageAccounts', problems);
  if (storage) {
    expectRaw(problems, 'storage allowSharedKeyAccess', rawAt(storage.body, 'properties', 'allowSharedKeyAccess'), 'false');
    expectRaw(problems, 'storage allowBlobPublicAccess', rawAt(storage.body, 'properties', 'allowBlobPublicAccess'), 'false');
    expectRaw(problems, 'storage minimumTlsVersion', rawAt(storage.body, 'properties', 'minimumTlsVersion'), "'TLS1_2'");
    expectRaw(problems, 'storage supportsHttpsTrafficOnly', rawAt(storage.body, 'properties', 'supportsHttpsTrafficOnly'), 'true');
  }

  const vault = single(repo, 'Microsoft.KeyVault/vaults', problems);
  if (vault) {
    expectRaw(problems, 'Key Vault enableRbacAuthorization', rawAt(vault.body, 'properties', 'enableRbacAuthorization'), 'true');
    expectRaw(problems, 'Key Vault enableSoftDelete', rawAt(vault.body, 'properties', 'enableSoftDelete'), 'true');
    expectRaw(problems, 'Key Vault enablePurgeProtection', rawAt(vault.body, 'properties', 'enablePurgeProtection'), 'true');
    if (at(vault.body, 'properties', 'accessPolicies')) problems.push('Key Vault must not declare access policies (RBAC only)');
  }

  const appInsights = single(repo, 'Microsoft.Insights/components', problems);
  if (appInsights) {
    expectRaw(problems, 'Application Insights DisableLocalAuth', rawAt(appInsights.body, 'properties', 'DisableLocalAuth'), 'true');
    if (!rawAt(appInsights.body, 'properties', 'WorkspaceResourceId')) problems.push('Application Insights must be workspace-based (WorkspaceResourceId)');
  }
  if (resourcesOf(repo, 'Microsoft.OperationalInsights/workspaces').length !== 1) problems.push('expected one Log Analytics workspace');

  const plan = single(repo, 'Microsoft.Web/serverfarms', problems);
  if (plan) {
    expectRaw(problems, 'plan sku.name', rawAt(plan.body, 'sku', 'name'), "'FC1'");
    expectRaw(problems, 'plan sku.tier', rawAt(plan.body, 'sku', 'tier'), "'FlexConsumption'");
    expectRaw(problems, 'plan reserved (Linux)', rawAt(plan.body, 'properties', 'reserved'), 'true');
  }

  const identities = resourcesOf(repo, 'Microsoft.ManagedIdentity/userAssignedIdentities');
  if (identities.length !== 1) problems.push(`expected one user-assigned identity, found ${identities.length}`);

  const site = single(repo, 'Microsoft.Web/sites', problems);
  if (site) {
    const kind = stringLiteral(rawAt(site.body, 'kind')) ?? '';
    if (!/functionapp/.test(kind) || !/linux/.test(kind)) problems.push(`function app kind must be 'functionapp,linux' (is ${kind})`);
    expectRaw(problems, 'function app httpsOnly', rawAt(site.body, 'properties', 'httpsOnly'), 'true');
    expectRaw(problems, 'function app siteConfig.minTlsVersion', rawAt(site.body, 'properties', 'siteConfig', 'minTlsVersion'), "'1.2'");
    expectRaw(problems, 'function app runtime name', rawAt(site.body, 'properties', 'functionAppConfig', 'runtime', 'name'), "'node'");
    expectRaw(problems, 'function app runtime version', rawAt(site.body, 'properties', 'functionAppConfig', 'runtime', 'version'), "'22'");
    expectRaw(problems, 'function app serverFarmId', rawAt(site.body, 'properties', 'serverFarmId'), `${plan?.symbol}.id`);
    expectRaw(problems, 'function app identity type', rawAt(site.body, 'identity', 'type'), "'UserAssigned'");
    const uami = site.file.resources.find((r) => r.type === 'Microsoft.ManagedIdentity/userAssignedIdentities');
    const identityId = `${uami?.symbol}.id`;
    if (!rawAt(site.body, 'identity', 'userAssignedIdentities')?.includes(`'\${${identityId}}'`)) problems.push('the function app must carry the user-assigned identity');
    expectRaw(problems, 'function app keyVaultReferenceIdentity', rawAt(site.body, 'properties', 'keyVaultReferenceIdentity'), identityId);
    expectRaw(problems, 'deployment storage authentication', rawAt(site.body, 'properties', 'functionAppConfig', 'deployment', 'storage', 'authentication', 'type'), "'UserAssignedIdentity'");
    expectRaw(problems, 'deployment storage identity', rawAt(site.body, 'properties', 'functionAppConfig', 'deployment', 'storage', 'authentication', 'userAssignedIdentityResourceId'), identityId);
    for (const prop of FORBIDDEN_SITE_PROPERTIES) {
      if (new RegExp(`\\b${prop}\\s*:`, 'i').test(site.body.raw)) problems.push(`function app sets ${prop}, which Flex Consumption does not support`);
    }
    const tags = rawAt(site.body, 'tags') ?? '';
    if (!tags.includes("'azd-service-name'")) problems.push("function app must carry the 'azd-service-name' tag azd deploys by");
  }
  for (const [rel, f] of repo.bicep) {
    for (const key of ['FUNCTIONS_WORKER_RUNTIME', 'FUNCTIONS_EXTENSION_VERSION', 'WEBSITE_NODE_DEFAULT_VERSION']) {
      if (new RegExp(`\\b${key}\\b`).test(f.code)) problems.push(`${rel} mentions ${key}, which must not be set on Flex Consumption`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Modules, parameters and outputs (what a compiler would reject first)
// ---------------------------------------------------------------------------------------------------------------

export function checkModuleWiring(repo: Repo): string[] {
  const problems: string[] = [];
  const main = file(repo, 'infra/main.bicep', problems);
  if (!main) return problems;
  if (!/^\s*targetScope\s*=\s*'subscription'/m.test(main.code)) problems.push("main.bicep must have targetScope = 'subscription'");
  if (resourcesOf(repo, 'Microsoft.Resources/resourceGroups').length !== 1) problems.push('main.bicep must declare the resource group');

  for (const [rel, f] of repo.bicep) {
    for (const mod of f.modules) {
      if (mod.path.startsWith('br/') || mod.path.startsWith('br:')) continue;
      const targetRel = path.posix.normalize(path.posix.join(path.posix.dirname(rel), mod.path));
      const target = repo.bicep.get(targetRel);
      if (!target) {
        problems.push(`${rel}: module ${mod.symbol} uses ${mod.path}, which does not exist`);
        continue;
      }
      const passed = at(mod.body, 'params');
      const passedKeys = passed?.kind === 'object' ? [...passed.entries.keys()] : [];
      for (const key of passedKeys) if (!target.params.has(key)) problems.push(`${rel}: module ${mod.symbol} passes ${key}, which ${targetRel} does not declare`);
      for (const p of target.params.values()) {
        if (!p.default && !passedKeys.includes(p.name)) problems.push(`${rel}: module ${mod.symbol} does not pass the required parameter ${p.name} of ${targetRel}`);
      }
      // Outputs used from this module exist.
      for (const m of f.code.matchAll(new RegExp(`\\b${mod.symbol}\\.outputs\\.(\\w+)`, 'g'))) {
        if (!target.outputs.has(m[1] as string)) problems.push(`${rel}: ${mod.symbol}.outputs.${m[1]} does not exist in ${targetRel}`);
      }
    }
  }

  // Every main.bicep parameter mapped in main.parameters.json exists, and the required ones are mapped.
  let parameters: { parameters?: Record<string, { value?: unknown }> } = {};
  try {
    parameters = JSON.parse(repo.read('infra/main.parameters.json') ?? '') as typeof parameters;
  } catch {
    problems.push('infra/main.parameters.json is missing or not JSON');
  }
  const mapped = Object.keys(parameters.parameters ?? {});
  for (const key of mapped) if (!main.params.has(key)) problems.push(`main.parameters.json maps ${key}, which main.bicep does not declare`);
  for (const key of ['environmentName', 'location', 'principalId']) if (!mapped.includes(key)) problems.push(`main.parameters.json must map ${key}`);
  return problems;
}

export function checkOutputs(repo: Repo): string[] {
  const problems: string[] = [];
  const main = file(repo, 'infra/main.bicep', problems);
  const fa = file(repo, 'infra/app/functionapp.bicep', problems);
  if (!main || !fa) return problems;
  const required = [
    'AZURE_LOCATION',
    'AZURE_TENANT_ID',
    'AZURE_RESOURCE_GROUP',
    'SERVICE_API_NAME',
    'SERVICE_API_URI',
    'HUBSPOT_WEBHOOK_TARGET_URL',
    'HUBSPOT_OAUTH_REDIRECT_URL',
    'GRAPH_NOTIFICATION_URL',
    'GRAPH_LIFECYCLE_NOTIFICATION_URL',
    'AZURE_KEY_VAULT_NAME',
    'AZURE_KEY_VAULT_ENDPOINT',
  ];
  for (const name of required) if (!main.outputs.has(name)) problems.push(`main.bicep must output ${name}`);
  const schemaKeys = Object.keys(envSchema.shape);
  for (const name of main.outputs.keys()) {
    if (schemaKeys.includes(name) || name in HOST_SETTINGS) problems.push(`output ${name} is named like an app setting; azd would write it to the environment file`);
  }

  const routes = at(fa.vars.get('routes'));
  for (const [key, route] of Object.entries(EXPECTED_ROUTES)) {
    expectRaw(problems, `functionapp.bicep routes.${key}`, rawAt(routes, key), `'${route}'`);
  }
  const expectUses = (output: string, route: string) => {
    const raw = fa.outputs.get(output)?.value.raw;
    if (raw !== `'\${publicBaseUrl}\${routes.${route}}'`) problems.push(`functionapp.bicep output ${output} must be '\${publicBaseUrl}\${routes.${route}}' (is ${raw})`);
  };
  expectUses('hubspotRedirectUrl', 'hubspotOAuthCallback');
  expectUses('hubspotWebhookUrl', 'hubspotWebhook');
  expectUses('graphNotificationUrl', 'graphNotifications');
  expectUses('graphLifecycleNotificationUrl', 'graphLifecycleNotifications');
  expectRaw(problems, 'functionapp.bicep publicBaseUrl', fa.vars.get('publicBaseUrl')?.raw, "'https://${site.properties.defaultHostName}'");
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// The settings, as Azure would hand them to the app, pass the config schema
// ---------------------------------------------------------------------------------------------------------------

/** What main.bicep passes to functionapp.bicep for a module parameter, as a main.bicep parameter declaration. */
function mainParamFor(repo: Repo, moduleParam: string) {
  const main = repo.bicep.get('infra/main.bicep');
  const mod = main?.modules.find((m) => m.path.endsWith('/functionapp.bicep'));
  const passed = rawAt(mod?.body, 'params', moduleParam);
  return passed !== undefined ? main?.params.get(passed) : undefined;
}

function placeholder(key: string): string {
  return /uri|url/i.test(key) ? 'https://placeholder.example/' : 'placeholder-value';
}

/** Builds the environment for one on/off combination of the optional groups and parses it. */
/** What the `environment()` expressions main.bicep uses as parameter defaults evaluate to in Azure's public cloud. */
const PUBLIC_CLOUD_VALUES: Record<string, string> = {
  'environment().authentication.loginEndpoint': 'https://login.microsoftonline.com/',
};

export function checkSettingsParse(repo: Repo): string[] {
  const problems: string[] = [];
  const groups = appSettingsGroups(repo, problems);
  const optional = groups.filter((g) => g.condition !== undefined);
  const shape = envSchema.shape as unknown as Record<string, { safeParse(v: unknown): { success: boolean } }>;

  const valueFor = (key: string, raw: string): string => {
    if (raw.startsWith("'@Microsoft.KeyVault(")) return placeholder(key); // what the platform resolves it to
    const literal = stringLiteral(raw);
    if (literal !== undefined) return literal;
    const p = mainParamFor(repo, raw);
    const def = stringLiteral(p?.default?.raw);
    if (def) return def;
    const known = p?.default?.raw !== undefined ? PUBLIC_CLOUD_VALUES[p.default.raw] : undefined;
    if (known) return known;
    return placeholder(key);
  };

  for (let mask = 0; mask < 1 << optional.length; mask++) {
    const env: Record<string, string> = {};
    const on = optional.filter((_, i) => mask & (1 << i));
    for (const g of groups.filter((x) => x.condition === undefined || on.includes(x))) {
      for (const [k, raw] of g.settings) env[k] = valueFor(k, raw);
    }
    const parsed = envSchema.safeParse(env);
    if (!parsed.success) {
      const which = on.map((g) => g.name).join(', ') || 'no optional group';
      problems.push(`with ${which} switched on, the app settings fail the config schema: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
  }

  // Parameter defaults and allowed values that become settings are valid for the schema too.
  for (const g of groups) {
    for (const [key, raw] of g.settings) {
      const field = shape[key];
      const p = mainParamFor(repo, raw);
      if (!field || !p) continue;
      const def = stringLiteral(p.default?.raw);
      if (def !== undefined && def !== '' && !field.safeParse(def).success) problems.push(`main.bicep default of ${p.name} ('${def}') is not a valid ${key}`);
      const allowed = p.decorators.find((d) => d.name === 'allowed');
      if (allowed) {
        for (const v of stringItems(decoratorValue(allowed)) ?? []) {
          if (!field.safeParse(v).success) problems.push(`main.bicep allows ${p.name} = '${v}', which is not a valid ${key}`);
        }
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// The worker's V8 heap is the one the benchmark measures
// ---------------------------------------------------------------------------------------------------------------

/**
 * NODE_OPTIONS comes from `nodeHeapOptions[string(instanceMemoryMB)]`, with an entry for every instance size
 * main.bicep allows, each the heap `instanceHeap` (the benchmark) gives that size.
 */
export function checkNodeHeap(repo: Repo): string[] {
  const problems: string[] = [];
  const fa = file(repo, 'infra/app/functionapp.bicep', problems);
  if (!fa) return problems;
  const core = appSettingsGroups(repo, problems).find((g) => g.condition === undefined);
  expectRaw(problems, 'NODE_OPTIONS', core?.settings.get('NODE_OPTIONS'), 'nodeHeapOptions[string(instanceMemoryMB)]');
  const table = fa.vars.get('nodeHeapOptions');
  if (table?.kind !== 'object') {
    problems.push('functionapp.bicep has no nodeHeapOptions object');
    return problems;
  }
  const param = mainParamFor(repo, 'instanceMemoryMB');
  const allowedDecorator = param?.decorators.find((d) => d.name === 'allowed');
  const allowedValue = allowedDecorator ? decoratorValue(allowedDecorator) : undefined;
  const allowed = allowedValue?.kind === 'array' ? allowedValue.items.map((v) => v.raw.trim()) : [];
  if (allowed.length === 0 || allowed.some((v) => !/^\d+$/.test(v))) problems.push('main.bicep does not restrict instanceMemoryMB to whole numbers with @allowed');
  for (const size of allowed) {
    const raw = rawAt(table, size);
    const expected = instanceHeap(Number(size)).flags.join(' ');
    if (raw === undefined) problems.push(`nodeHeapOptions has no entry for an instance of ${size} MB`);
    else if (stringLiteral(raw) !== expected) problems.push(`nodeHeapOptions['${size}'] is ${raw}, the benchmark's heap for ${size} MB is '${expected}'`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Files next to infra/
// ---------------------------------------------------------------------------------------------------------------

export function checkHostJson(repo: Repo): string[] {
  const problems: string[] = [];
  const text = repo.read('host.json');
  if (!text) return ['host.json is missing'];
  const host = JSON.parse(text) as { extensionBundle?: { id?: string; version?: string } };
  if (host.extensionBundle?.id !== 'Microsoft.Azure.Functions.ExtensionBundle') problems.push('host.json must use the Microsoft.Azure.Functions.ExtensionBundle');
  const version = host.extensionBundle?.version ?? '';
  const m = /^\[\s*(\d+)(?:\.[\d*]+)*\s*,\s*(\d+)(?:\.\d+)*\s*\)$/.exec(version);
  if (!m || Number(m[1]) < 4 || Number(m[2]) <= Number(m[1])) {
    problems.push(`host.json extension bundle version ${JSON.stringify(version)} must be [4.*, 5.0.0) or later (Flex Consumption)`);
  }
  return problems;
}

export function checkLocalSettingsSample(repo: Repo): string[] {
  const text = repo.read('local.settings.sample.json');
  if (text === undefined) return [];
  const problems: string[] = [];
  let values: Record<string, unknown> = {};
  try {
    values = ((JSON.parse(text) as { Values?: Record<string, unknown> }).Values ?? {}) as Record<string, unknown>;
  } catch (err) {
    return [`local.settings.sample.json is not JSON: ${(err as Error).message}`];
  }
  const platformProvided = Object.entries(NOT_SET_IN_AZURE).filter(([, why]) => why === 'provided by the platform').map(([k]) => k);
  const schemaKeys = Object.keys(envSchema.shape);
  for (const key of schemaKeys) {
    if (platformProvided.includes(key) || key in AZURE_ONLY_SETTINGS) continue;
    if (!(key in values)) problems.push(`local.settings.sample.json does not list ${key}, which the config schema reads`);
  }
  const hostKeys = ['FUNCTIONS_WORKER_RUNTIME', 'AzureWebJobsFeatureFlags', 'AzureWebJobsSecretStorageType', ...Object.keys(HOST_SETTINGS)];
  for (const key of Object.keys(values)) {
    if (key.startsWith('_') || key.startsWith('//') || key.startsWith('#')) continue;
    // LOCAL_* settings belong to the local runner by naming convention.
    if (!schemaKeys.includes(key) && !hostKeys.includes(key) && !key.startsWith('LOCAL_')) {
      problems.push(`local.settings.sample.json lists ${key}, which neither the config schema nor the host reads (typo?)`);
    }
  }
  return problems;
}

export function checkAzureYaml(repo: Repo): string[] {
  const problems: string[] = [];
  const yaml = repo.read('azure.yaml');
  if (!yaml) return ['azure.yaml is missing'];
  const service = /^services:\s*\n\s+(\w+):\s*\n((?:\s{4,}.*\n?|\s*#.*\n?|\s*\n)*)/m.exec(yaml);
  if (!service) return ['azure.yaml must declare a service'];
  const [, name, body] = service as unknown as [string, string, string];
  const field = (key: string) => new RegExp(`^\\s+${key}:\\s*([^#\\s]+)`, 'm').exec(body)?.[1];
  if (field('host') !== 'function') problems.push('azure.yaml service host must be function');
  if (!['ts', 'typescript'].includes(field('language') ?? '')) problems.push('azure.yaml service language must be ts');
  if (field('project') !== '.') problems.push('azure.yaml service project must be .');
  const site = resourcesOf(repo, 'Microsoft.Web/sites')[0];
  const serviceParam = site?.file.params.get('serviceName');
  if (stringLiteral(serviceParam?.default?.raw) !== name) problems.push(`functionapp.bicep serviceName default must be the azure.yaml service name "${name}"`);
  if (/^infra:/m.test(yaml) && !/^infra:[ \t]*\n(?:[ \t]+.*\n)*?[ \t]+path:[ \t]*infra[ \t]*$/m.test(yaml)) problems.push('azure.yaml infra.path must be infra');

  // azd refuses remoteBuild: true unless .funcignore excludes node_modules, and remoteBuild: false if it does.
  const remoteBuild = field('remoteBuild');
  const funcignore = (repo.read('.funcignore') ?? '').split(/\r?\n/).map((l) => l.trim());
  const ignores = (entry: string) => funcignore.some((l) => l.replace(/\/$/, '') === entry);
  if (remoteBuild === 'true') {
    if (!ignores('node_modules')) problems.push('remoteBuild: true needs .funcignore to exclude node_modules');
    for (const needed of ['src', 'tsconfig.json']) if (ignores(needed)) problems.push(`remoteBuild: true builds on Azure, which needs ${needed}, but .funcignore excludes it`);
  } else {
    if (ignores('node_modules')) problems.push('.funcignore excludes node_modules, so azure.yaml must say remoteBuild: true');
    if (ignores('dist')) problems.push('a local build deploys dist/, but .funcignore excludes it');
  }
  return problems;
}

function functionSources(repo: Repo): string {
  const dir = path.join(repo.root, 'src', 'functions');
  if (!existsSync(dir)) return '';
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => readFileSync(path.join(dir, f), 'utf8'))
    .join('\n');
}

function routeRegistered(sources: string, route: string): boolean {
  const bare = route.replace(/^\/api\//, '');
  return new RegExp(`['"\`]/?${bare.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}['"\`]`).test(sources);
}

/** True once any of the functions behind the published addresses exists (before that the check has nothing to hold). */
export function anyPublishedRouteRegistered(repo: Repo): boolean {
  const sources = functionSources(repo);
  return Object.values(EXPECTED_ROUTES).some((route) => routeRegistered(sources, route));
}

/** The routes infra/ publishes (outputs, HubSpot redirect URI) are ones the functions register. */
export function checkRoutesRegistered(repo: Repo): string[] {
  const sources = functionSources(repo);
  const problems: string[] = [];
  for (const route of Object.values(EXPECTED_ROUTES)) {
    if (!routeRegistered(sources, route)) problems.push(`no function in src/functions registers route '${route.replace(/^\/api\//, '')}', which infra/ publishes as ${route}`);
  }
  return problems;
}

export const ALL_CHECKS = {
  checkTablesAndQueues,
  checkAppSettingsCoverSchema,
  checkNoSecretsInSettings,
  checkRoleAssignments,
  checkResourceProperties,
  checkModuleWiring,
  checkOutputs,
  checkSettingsParse,
  checkHostJson,
  checkLocalSettingsSample,
  checkAzureYaml,
} as const;
