// Storage: one StorageV2 account for the Functions host (AzureWebJobsStorage), the deployment package and the
// app's own state. Shared-key access is off, so there is no connection string or account key to leak: the
// platform and the app reach it with the managed identity (roles in rbac.bicep).
//
// tableNames, queueNames and blobContainerNames are exactly ALL_TABLES, ALL_QUEUES and ALL_BLOB_CONTAINERS of
// src/storage/names.ts (the structure test holds them together). The `<queue>-poison` twins are created by the
// Functions runtime on first use.

param name string
param location string
param tags object

@description('Blob container Flex Consumption deploys the app package to.')
param deploymentContainerName string

// An engine event too large for a queue message keeps its data in engine-event-data (the claim check; the
// message's dataref names the blob). The blob must outlive every message that names it: engine-events messages
// live 7 days (the queue default), so 14 days leaves a week for a late reader or a replayed poison message. A
// re-sent event rewrites its blob, so the clock runs from the last write. Blobs of a send that crashed before
// its message went out are named by no message and simply expire.
@description('Days after their last write that engine-event-data blobs are deleted (more than the 7-day message lifetime).')
@minValue(8)
param engineEventDataRetentionDays int = 14

var tableNames = [
  'Integrations'
  'AccountIndex'
  'SyncState'
  'SyncEvents'
  'Records'
  'Conversations'
  'Subscriptions'
  'Processed'
  'Leases'
  'RateBudgets'
  'GraphMailboxes'
  'TeamsChannels'
  'TeamsNotifications'
  'TeamsState'
  'DeploymentState'
  'Expiry'
]

var queueNames = [
  'hubspot-sync'
  'hubspot-events'
  'hubspot-webhooks'
  'graph-notifications'
  'graph-webhooks'
  'teams-cards'
  'engine-events'
]

var blobContainerNames = [
  'engine-event-data'
]

resource storage 'Microsoft.Storage/storageAccounts@2026-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2026-04-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2026-04-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2026-04-01' = [
  for containerName in blobContainerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

// Lifecycle management runs about once a day, so a blob goes within a day or so after it falls due.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2026-04-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-engine-event-data'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'engine-event-data/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: engineEventDataRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    containers
  ]
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2026-04-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2026-04-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2026-04-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2026-04-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

output name string = storage.name
