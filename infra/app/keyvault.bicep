// Key Vault: deployment secrets (hubspot-client-secret, msgraph-client-secret, teams-webhook-url; set by the
// operator, see README.md (Deployment)) and the per-tenant tokens the app writes at run time. Access is Azure RBAC
// only (no access policies); who holds which role is in rbac.bicep. Deleted secrets and the vault itself stay
// recoverable for softDeleteRetentionInDays, and purge protection means nobody can cut that short.

param name string
param location string
param tags object

@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2026-02-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // Cannot be turned off again. It also means `azd down --purge` cannot purge this vault: its name stays
    // reserved until the retention period ends (README.md (Deployment), "Tearing down").
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
