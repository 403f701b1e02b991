import { ConflictError } from '../../platform/errors';
import { escapeKeyPart, partitionKey } from '../keys';
import type { TenantTable } from '../tenantTable';

export interface DeploymentRow extends Record<string, string | number | boolean | Date | null | undefined> {
  value: string;
  createdAt: number;
}

/**
 * Deployment-wide settings that every instance must agree on and that are written once: the first
 * write wins (Table Storage's insert fails on an existing row), and every later writer adopts it. Key
 * Vault has no conditional create, so this table is where racing instances settle such a choice.
 */
export class DeploymentState {
  constructor(
    private readonly table: TenantTable<DeploymentRow>,
    private readonly now: () => number = Date.now,
  ) {}

  async get(name: string): Promise<string | undefined> {
    return (await this.table.get(partitionKey.deployment(), escapeKeyPart(name)))?.data.value;
  }

  /** Stores `value` under `name` unless something is stored there already; returns what is stored. */
  async putIfAbsent(name: string, value: string): Promise<string> {
    try {
      await this.table.create(partitionKey.deployment(), escapeKeyPart(name), { value, createdAt: this.now() });
      return value;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
    const held = await this.get(name);
    // Rows here are never deleted by the app; a missing one means an operator removed it just now.
    if (held === undefined) throw new Error(`deployment setting ${name} was removed while being set`);
    return held;
  }
}
