// The app's one identity: a user-assigned managed identity. The function app runs as it (host storage,
// deployment package, Key Vault references, Application Insights) and so does our code (DefaultAzureCredential
// picks it through AZURE_CLIENT_ID). Its roles are all in rbac.bicep.

param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: name
  location: location
  tags: tags
}

output name string = identity.name
output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
