// Storage: one StorageV2 account for the Functions host (AzureWebJobsStorage), the deployment package and the
// app's own state. Shared-key access is off, so there is no connection string or account key to leak: the
// platform and the app reach it with the managed identity (roles in rbac.bicep).
//
// tableNames and queueNames are exactly ALL_TABLES and ALL_QUEUES of src/storage/names.ts (the structure test
// holds them together). The `<queue>-poison` twins are created by the Functions runtime on first use.

param name string
param location string
param tags object

@description('Blob container Flex Consumption deploys the app package to.')
param deploymentContainerName string

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

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
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

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

output name string = storage.name
