import type { BaseConnector } from './base';

/**
 * Connectors that take part in the deployment-wide health check. Each connector module registers a
 * factory at load time; `required` ones turn `/api/health` to 503 when they fail.
 */
export interface ConnectorRegistration {
  name: string;
  required: boolean;
  /** Returns undefined when the connector is not configured in this deployment. */
  create(): BaseConnector | undefined;
}

const registrations = new Map<string, ConnectorRegistration>();

export function registerConnector(registration: ConnectorRegistration): void {
  registrations.set(registration.name, registration);
}

export function registeredConnectors(): ConnectorRegistration[] {
  return [...registrations.values()];
}

export function clearConnectorRegistry(): void {
  registrations.clear();
}
