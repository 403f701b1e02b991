// itil-next-connectors: everything `azd up` creates, at a glance.
//
//   subscription
//   └── resource group rg-<environment>
//       ├── app/identity.bicep     user-assigned managed identity: the app's only identity
//       ├── app/monitoring.bicep   Log Analytics workspace + Application Insights (Entra-only ingestion)
//       ├── app/storage.bicep      storage account, shared keys off: deployment container, every table and queue
//       ├── app/keyvault.bicep     Key Vault: RBAC authorisation, soft delete, purge protection
//       ├── app/rbac.bicep         every role assignment (the app identity's and the operator's), in one file
//       └── app/functionapp.bicep  Flex Consumption plan + function app (Linux, Node 22) + its app settings
//
// Nothing here writes a secret. The three deployment secrets (HubSpot app secret, Entra app secret, optional
// Teams fallback webhook URL) are put into Key Vault by the operator (README.md, Deployment) and reach the app as
// Key Vault references; everything else is reached with the managed identity.

targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------------------------
// Environment (azd fills these from AZURE_ENV_NAME, AZURE_LOCATION and AZURE_PRINCIPAL_ID)
// ---------------------------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group and seeds the unique token in resource names.')
param environmentName string

@minLength(1)
@description('Region for every resource. It must offer Flex Consumption: az functionapp list-flexconsumption-locations')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of whoever runs azd. Gets Key Vault Secrets Officer on the vault so they can set the app secrets. Empty: no operator role is assigned.')
param principalId string = ''

@description('Kind of principal principalId is: User for a person, ServicePrincipal for a pipeline.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

@description('Resource group name; default rg-<environmentName>.')
param resourceGroupName string = ''

// ---------------------------------------------------------------------------------------------------------------
// App configuration: non-secret values only (they become app settings; see src/config/schema.ts)
// ---------------------------------------------------------------------------------------------------------------

@minLength(1)
@description('API_JWT_JWKS_URI: JWKS URL of the issuer of bearer tokens for the management API (for Entra ID, the tenant\'s v2.0 discovery keys URL; see README.md, Deployment).')
param apiJwtJwksUri string

@minLength(1)
@description('API_JWT_ISSUER: expected iss claim of management API tokens (for Entra ID, the tenant\'s v2.0 issuer).')
param apiJwtIssuer string

@minLength(1)
@description('API_JWT_AUDIENCE: expected aud of management API tokens (the API app registration\'s client id or App ID URI).')
param apiJwtAudience string

@minLength(1)
@description('API_JWT_TENANT_CLAIM: the token claim that names the itil-next tenant.')
param apiJwtTenantClaim string = 'tenant_id'

@description('HUBSPOT_CLIENT_ID of the HubSpot public app. Empty: HubSpot OAuth stays off (private-app tokens still work). Set it only after hubspot-client-secret is in Key Vault.')
param hubspotClientId string = ''

@description('HUBSPOT_API_BASE_URL')
param hubspotApiBaseUrl string = 'https://api.hubapi.com'

@description('MSGRAPH_CLIENT_ID of the Entra app registration used for Graph. Empty: Graph stays off. Set it only after msgraph-client-secret is in Key Vault.')
param msgraphClientId string = ''

@description('MSGRAPH_CREDENTIAL: what proves the Graph app registration to Entra. secret: msgraph-client-secret. certificate (Microsoft\'s recommendation): the Key Vault certificate msgraph-client-certificate, which the app reads at run time; msgraph-client-secret stays referenced as its fallback (README.md, Deployment).')
@allowed([
  'secret'
  'certificate'
])
param msgraphCredential string = 'secret'

@description('MSGRAPH_TENANT_ID: home tenant of that app registration; default the tenant of this subscription.')
param msgraphTenantId string = ''

@description('GRAPH_BASE_URL')
param graphBaseUrl string = 'https://graph.microsoft.com'

@description('MSGRAPH_AUTHORITY_HOST: Entra authority host for Graph client-credential tokens.')
param msgraphAuthorityHost string = environment().authentication.loginEndpoint

@description('MSGRAPH_SUBSCRIPTION_LIFETIME_MINUTES: lifetime asked for Graph mail subscriptions (falls back to 4230 when Graph refuses more).')
param msgraphSubscriptionLifetimeMinutes string = '4230'

@description('True once teams-webhook-url is in Key Vault: TEAMS_WEBHOOK_URL (the fallback channel) is then referenced from it.')
param teamsFallbackWebhookEnabled bool = false

@description('LOG_LEVEL')
@allowed([
  'debug'
  'info'
  'warn'
  'error'
])
param logLevel string = 'info'

// ---------------------------------------------------------------------------------------------------------------
// Sizing and retention
// ---------------------------------------------------------------------------------------------------------------

@minValue(1)
@maxValue(1000)
@description('Most instances Flex Consumption may scale out to (HubSpot and Graph rate limits, not compute, bound this app).')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Memory per Flex Consumption instance, in MB; execution is billed per GB-second of this size.')
param instanceMemoryMB int = 2048

@minValue(7)
@maxValue(90)
@description('Days a deleted vault or secret is kept (soft delete). Fixed when the vault is created.')
param keyVaultSoftDeleteRetentionDays int = 90

@description('Daily ingestion cap of the Log Analytics workspace in GB; -1 is no cap.')
param logAnalyticsDailyCapGb int = -1

// ---------------------------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------------------------

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = '${abbrs.webSitesFunctions}connectors-${resourceToken}'
// Names are computed here, not taken from module outputs, so that what-if can predict every resource id.
var identityName = '${abbrs.managedIdentityUserAssignedIdentities}connectors-${resourceToken}'
var storageAccountName = '${abbrs.storageStorageAccounts}${resourceToken}'
var keyVaultName = '${abbrs.keyVaultVaults}${resourceToken}'
var applicationInsightsName = '${abbrs.insightsComponents}${resourceToken}'
// Flex Consumption runs the app from a zip in this blob container (created in storage.bicep).
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2025-04-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------------------------

module identity './app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: identityName
    location: location
    tags: tags
  }
}

module monitoring './app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: applicationInsightsName
    location: location
    tags: tags
    dailyCapGb: logAnalyticsDailyCapGb
  }
}

module storage './app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: storageAccountName
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module keyVault './app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionDays
  }
}

module rbac './app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  // The roles are assigned on these resources, which the names alone do not make it wait for.
  dependsOn: [
    storage
    monitoring
    keyVault
  ]
  params: {
    storageAccountName: storageAccountName
    applicationInsightsName: applicationInsightsName
    keyVaultName: keyVaultName
    // The identity's principal id exists only once the identity does, so what-if cannot know it. It is part of
    // the role assignments' names (guid(scope, principal, role)); changing those names would make ARM refuse
    // the redeploy of an existing environment (RoleAssignmentExists), so the runtime value stays.
    #disable-next-line what-if-short-circuiting
    appPrincipalId: identity.outputs.principalId
    operatorPrincipalId: principalId
    operatorPrincipalType: principalType
  }
}

module functionApp './app/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  // The app starts as soon as it exists: its identity must already hold its roles (storage, Key Vault).
  dependsOn: [
    rbac
    identity
    storage
    monitoring
    keyVault
  ]
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityName: identityName
    storageAccountName: storageAccountName
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: applicationInsightsName
    keyVaultName: keyVaultName
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    apiJwtJwksUri: apiJwtJwksUri
    apiJwtIssuer: apiJwtIssuer
    apiJwtAudience: apiJwtAudience
    apiJwtTenantClaim: apiJwtTenantClaim
    hubspotClientId: hubspotClientId
    hubspotApiBaseUrl: hubspotApiBaseUrl
    msgraphClientId: msgraphClientId
    msgraphTenantId: !empty(msgraphTenantId) ? msgraphTenantId : tenant().tenantId
    msgraphCredential: msgraphCredential
    graphBaseUrl: graphBaseUrl
    msgraphAuthorityHost: msgraphAuthorityHost
    msgraphSubscriptionLifetimeMinutes: msgraphSubscriptionLifetimeMinutes
    teamsFallbackWebhookEnabled: teamsFallbackWebhookEnabled
    logLevel: logLevel
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Outputs. azd writes them to .azure/<env>/.env. None is named like an app setting, so that loading that file
// into a local shell cannot half-configure the app (see the structure test).
// ---------------------------------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name

// The function app (azd's service "api", found by its azd-service-name tag)
output SERVICE_API_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = functionApp.outputs.baseUrl

// Register these with HubSpot (app settings: webhooks target URL, auth redirect URL). Graph notification URLs are
// for reference: the app creates its Graph subscriptions itself with these addresses.
output HUBSPOT_WEBHOOK_TARGET_URL string = functionApp.outputs.hubspotWebhookUrl
output HUBSPOT_OAUTH_REDIRECT_URL string = functionApp.outputs.hubspotRedirectUrl
output GRAPH_NOTIFICATION_URL string = functionApp.outputs.graphNotificationUrl
output GRAPH_LIFECYCLE_NOTIFICATION_URL string = functionApp.outputs.graphLifecycleNotificationUrl

// Where the operator puts the secrets (az keyvault secret set --vault-name $AZURE_KEY_VAULT_NAME ...)
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
