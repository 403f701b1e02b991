// The function app: a Flex Consumption plan (Linux) and one function app on Node 22 that runs as the
// user-assigned identity, HTTPS only, TLS 1.2 minimum, with its app settings.
//
// No app setting holds a secret:
//   - host storage, our tables and queues, Key Vault and Application Insights are reached with the identity;
//   - the three deployment secrets are Key Vault references, resolved by the platform with the identity.
// Flex Consumption takes the language and version from functionAppConfig.runtime; FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION and WEBSITE_NODE_DEFAULT_VERSION are deprecated there and deliberately absent.

param name string
param planName string
param location string
param tags object

@description('Service name in azure.yaml; azd finds the app to deploy to by this tag.')
param serviceName string = 'api'

param identityName string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param keyVaultName string

param maximumInstanceCount int
param instanceMemoryMB int

// App configuration (src/config/schema.ts): non-secret values only.
param apiJwtJwksUri string
param apiJwtIssuer string
param apiJwtAudience string
param apiJwtTenantClaim string
param hubspotClientId string
param hubspotApiBaseUrl string
param msgraphClientId string
param msgraphTenantId string
param msgraphCredential string
param graphBaseUrl string
param msgraphAuthorityHost string
param msgraphSubscriptionLifetimeMinutes string
param teamsFallbackWebhookEnabled bool
param logLevel string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' existing = {
  name: identityName
}

resource storage 'Microsoft.Storage/storageAccounts@2026-04-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2026-02-01' existing = {
  name: keyVaultName
}

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

resource site 'Microsoft.Web/sites@2025-03-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references (the *_SECRET and TEAMS_WEBHOOK_URL settings below) are resolved with this identity.
    // UNCONFIRMED in our facts sheet (shared/reference/azure.md §4) for a user-assigned identity on Flex
    // Consumption. Chosen because the app has no system-assigned identity, so without it the platform has no
    // identity to resolve references with; App Service documents keyVaultReferenceIdentity = <UAMI resource id>
    // as the way to use a user-assigned identity. If a reference does not resolve, the platform passes the literal
    // "@Microsoft.KeyVault(...)" text to the app instead (see README.md, Deployment, "Checking the secrets").
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// Deployments (azd deploy) authenticate with Entra tokens; the username/password publishing credentials are off.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
  // One change to the site at a time: parallel updates of one site can conflict (409).
  dependsOn: [
    scmBasicAuth
  ]
}

// ---------------------------------------------------------------------------------------------------------------
// Public addresses. Routes are those the functions register (host.json routePrefix "api").
// ---------------------------------------------------------------------------------------------------------------

var publicBaseUrl = 'https://${site.properties.defaultHostName}'
var routes = {
  hubspotOAuthCallback: '/api/hubspot/oauth/callback'
  hubspotWebhook: '/api/webhooks/hubspot'
  graphNotifications: '/api/webhooks/graph'
  graphLifecycleNotifications: '/api/webhooks/graph/lifecycle'
}

// ---------------------------------------------------------------------------------------------------------------
// Deployment secrets: fixed Key Vault secret names the operator sets (README.md, Deployment). The app never reads
// these names; the platform resolves the references below and hands the app the values.
// ---------------------------------------------------------------------------------------------------------------

var secretNames = {
  hubspotClientSecret: 'hubspot-client-secret'
  msgraphClientSecret: 'msgraph-client-secret'
  teamsWebhookUrl: 'teams-webhook-url'
}

// ---------------------------------------------------------------------------------------------------------------
// App settings, in four groups. The optional groups are all-or-nothing because the config schema requires
// HubSpot's client id, secret and redirect URI together (and Graph's id and secret together); a group is only
// switched on once its secret exists in Key Vault, since an unresolved reference reaches the app as literal text.
// ---------------------------------------------------------------------------------------------------------------

// V8's heap for each instance size, as Node sizes it inside a container limited to that memory (old
// generation = memory / 2, semi-space = old / 128, or old / 256 up to 256 MB). Stated rather than left to
// Node so the worker gets it even where the limit is not visible to Node, and so production runs with
// the heap `npm run bench` measures (bench/hubspotSync/instanceHeap.ts; test/unit/infra checks they agree).
var nodeHeapOptions = {
  '512': '--max-old-space-size=256 --max-semi-space-size=1'
  '2048': '--max-old-space-size=1024 --max-semi-space-size=8'
  '4096': '--max-old-space-size=2048 --max-semi-space-size=16'
}

var coreSettings = {
  // Host storage (and our tables and queues) through the identity; see also AZURE_CLIENT_ID.
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.properties.clientId
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
  // Telemetry, Entra-authenticated (the resource refuses key-only ingestion).
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  // DefaultAzureCredential in our code (Key Vault, tables, queues) uses the user-assigned identity through this.
  AZURE_CLIENT_ID: identity.properties.clientId
  KEY_VAULT_URI: vault.properties.vaultUri
  PUBLIC_BASE_URL: publicBaseUrl
  API_JWT_JWKS_URI: apiJwtJwksUri
  API_JWT_ISSUER: apiJwtIssuer
  API_JWT_AUDIENCE: apiJwtAudience
  API_JWT_TENANT_CLAIM: apiJwtTenantClaim
  API_JWT_MAX_AGE_SECONDS: '86400'
  HUBSPOT_API_BASE_URL: hubspotApiBaseUrl
  HUBSPOT_WEBHOOK_ACCEPT_LEGACY_SIGNATURES: 'false'
  HUBSPOT_PRIVATE_APP_RATE_LIMIT: '100'
  HUBSPOT_RATE_WINDOW_MS: '10000'
  HUBSPOT_SYNC_TIME_BUDGET_SECONDS: '480'
  GRAPH_BASE_URL: graphBaseUrl
  MSGRAPH_AUTHORITY_HOST: msgraphAuthorityHost
  MSGRAPH_SUBSCRIPTION_LIFETIME_MINUTES: msgraphSubscriptionLifetimeMinutes
  MSGRAPH_MAILBOX_RATE_LIMIT: '10000'
  MSGRAPH_MAILBOX_RATE_WINDOW_MS: '600000'
  MSGRAPH_MAILBOX_CONCURRENCY: '4'
  LOG_LEVEL: logLevel
  NODE_OPTIONS: nodeHeapOptions[string(instanceMemoryMB)]
  // The host buffers a request body before invoking (HTTP streams are off): cap it at 2 MiB, above every
  // route's own limit (1 MiB at most), instead of the default 100 MB (learn.microsoft.com node-http-stream).
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '2097152'
}

var hubspotOAuthSettings = empty(hubspotClientId) ? {} : {
  HUBSPOT_CLIENT_ID: hubspotClientId
  HUBSPOT_CLIENT_SECRET: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${secretNames.hubspotClientSecret})'
  HUBSPOT_REDIRECT_URI: '${publicBaseUrl}${routes.hubspotOAuthCallback}'
}

// With MSGRAPH_CREDENTIAL certificate the app reads the Key Vault certificate msgraph-client-certificate itself (as
// the secret of that name, through the store, not as a reference); the client secret stays its fallback.
var graphAppSettings = empty(msgraphClientId) ? {} : {
  MSGRAPH_CLIENT_ID: msgraphClientId
  MSGRAPH_CREDENTIAL: msgraphCredential
  MSGRAPH_CLIENT_SECRET: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${secretNames.msgraphClientSecret})'
  MSGRAPH_TENANT_ID: msgraphTenantId
}

var teamsFallbackSettings = teamsFallbackWebhookEnabled ? {
  TEAMS_WEBHOOK_URL: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${secretNames.teamsWebhookUrl})'
} : {}

resource appSettings 'Microsoft.Web/sites/config@2025-03-01' = {
  parent: site
  name: 'appsettings'
  properties: union(coreSettings, hubspotOAuthSettings, graphAppSettings, teamsFallbackSettings)
  dependsOn: [
    ftpBasicAuth
  ]
}

output name string = site.name
output baseUrl string = publicBaseUrl
output hubspotRedirectUrl string = '${publicBaseUrl}${routes.hubspotOAuthCallback}'
output hubspotWebhookUrl string = '${publicBaseUrl}${routes.hubspotWebhook}'
output graphNotificationUrl string = '${publicBaseUrl}${routes.graphNotifications}'
output graphLifecycleNotificationUrl string = '${publicBaseUrl}${routes.graphLifecycleNotifications}'
