import { TableClient, TableServiceClient } from '@azure/data-tables';
import type { TokenCredential } from '@azure/identity';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { QueueClient, QueueServiceClient } from '@azure/storage-queue';
import type { StorageConfig } from '../config';
import { ALL_BLOB_CONTAINERS, ALL_QUEUES, ALL_TABLES, type BlobContainerName, type QueueName, type TableName } from './names';

/** Table, queue and blob clients for one storage account, made once per process and shared. */
export class StorageClients {
  readonly #config: StorageConfig;
  readonly #credential: TokenCredential | undefined;
  readonly #tables = new Map<string, TableClient>();
  readonly #queues = new Map<string, QueueClient>();
  #queueService: QueueServiceClient | undefined;
  #blobService: BlobServiceClient | undefined;

  constructor(config: StorageConfig) {
    this.#config = config;
    // The SDKs below are required where first needed, not imported: @azure/identity and the blob SDK cost
    // ~180 ms of every cold start, and identity is used only in Azure, blobs only for claim-checked events.
    if (config.kind === 'identity') {
      const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
      this.#credential = new DefaultAzureCredential(config.managedIdentityClientId ? { managedIdentityClientId: config.managedIdentityClientId } : {});
    } else {
      this.#credential = undefined;
    }
  }

  table(name: TableName): TableClient {
    let client = this.#tables.get(name);
    if (!client) {
      client =
        this.#config.kind === 'connectionString'
          ? TableClient.fromConnectionString(this.#config.connectionString, name, {
              allowInsecureConnection: isInsecure(this.#config.connectionString),
            })
          : new TableClient(this.#config.tableServiceUri, name, this.#credential as TokenCredential);
      this.#tables.set(name, client);
    }
    return client;
  }

  queueService(): QueueServiceClient {
    this.#queueService ??=
      this.#config.kind === 'connectionString'
        ? QueueServiceClient.fromConnectionString(this.#config.connectionString)
        : new QueueServiceClient(this.#config.queueServiceUri, this.#credential as TokenCredential);
    return this.#queueService;
  }

  /** Any queue, including `-poison` twins, which only the runtime and operators touch. */
  queue(name: QueueName | `${QueueName}-poison`): QueueClient {
    let client = this.#queues.get(name);
    if (!client) {
      client = this.queueService().getQueueClient(name);
      this.#queues.set(name, client);
    }
    return client;
  }

  /** The same account's blob service, with the same credentials as the tables and queues. */
  blobService(): BlobServiceClient {
    const { BlobServiceClient } = require('@azure/storage-blob') as typeof import('@azure/storage-blob');
    this.#blobService ??=
      this.#config.kind === 'connectionString'
        ? BlobServiceClient.fromConnectionString(this.#config.connectionString)
        : new BlobServiceClient(this.#config.blobServiceUri, this.#credential as TokenCredential);
    return this.#blobService;
  }

  container(name: BlobContainerName): ContainerClient {
    return this.blobService().getContainerClient(name);
  }

  /**
   * Creates every table, queue and blob container. Used locally (Azurite starts empty) and by tests; in Azure, infra/
   * declares them and the app's identity is not expected to create anything.
   */
  async ensureAll(): Promise<void> {
    await Promise.all([
      ...ALL_TABLES.map((t) => this.table(t).createTable()),
      ...ALL_QUEUES.map((q) => this.queue(q).createIfNotExists()),
      ...ALL_BLOB_CONTAINERS.map((c) => this.container(c).createIfNotExists()),
    ]);
  }

  /** A cheap round trip that proves the account answers and our credentials work. */
  async ping(): Promise<void> {
    const tableService =
      this.#config.kind === 'connectionString'
        ? TableServiceClient.fromConnectionString(this.#config.connectionString, {
            allowInsecureConnection: isInsecure(this.#config.connectionString),
          })
        : new TableServiceClient(this.#config.tableServiceUri, this.#credential as TokenCredential);
    const tables = tableService.listTables().byPage({ maxPageSize: 1 });
    await tables.next();
    await this.queue(ALL_QUEUES[0] as QueueName).exists();
    // Large engine events go through blobs (the claim check), so the blob service counts too.
    await this.container(ALL_BLOB_CONTAINERS[0] as BlobContainerName).exists();
  }
}

function isInsecure(connectionString: string): boolean {
  return /UseDevelopmentStorage=true/i.test(connectionString) || /Endpoint=http:\/\//i.test(connectionString) || /DefaultEndpointsProtocol=http;/i.test(connectionString);
}
