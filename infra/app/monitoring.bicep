// Monitoring: a Log Analytics workspace and a workspace-based Application Insights resource that accepts
// telemetry only from Entra-authenticated senders (DisableLocalAuth: the instrumentation key alone cannot
// ingest). The app sends as its managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING), which holds
// Monitoring Metrics Publisher on this resource (rbac.bicep).

param logAnalyticsName string
param applicationInsightsName string
param location string
param tags object

@description('Daily ingestion cap in GB; -1 is no cap.')
param dailyCapGb int = -1

resource workspace 'Microsoft.OperationalInsights/workspaces@2026-03-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    // 30 days sits inside the retention that ingestion already pays for.
    retentionInDays: 30
    workspaceCapping: {
      dailyQuotaGb: dailyCapGb
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

output applicationInsightsName string = appInsights.name
output logAnalyticsWorkspaceId string = workspace.id
