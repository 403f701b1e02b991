/**
 * The Graph SDK, @azure/identity and html-to-text, each loaded on first use: together ~80 ms of every cold
 * start (issue 13), paid only by an instance that talks to Graph. Types are imported as types where used.
 */
export const graphSdk = (): typeof import('@microsoft/microsoft-graph-client') => require('@microsoft/microsoft-graph-client') as typeof import('@microsoft/microsoft-graph-client');
export const graphCredentialProviders = (): typeof import('@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials') =>
  require('@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials') as typeof import('@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials');
export const identitySdk = (): typeof import('@azure/identity') => require('@azure/identity') as typeof import('@azure/identity');
export const htmlToText = (): typeof import('html-to-text') => require('html-to-text') as typeof import('html-to-text');
