import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import path from 'node:path';
import { assertSecretName, type SecretStore } from './types';

/**
 * Environment variables that only exist on Azure hosts: App Service / Functions
 * (`WEBSITE_INSTANCE_ID`, `WEBSITE_SITE_NAME`), Container Apps (`CONTAINER_APP_NAME`; not the generic `CONTAINER_NAME` many container runtimes set) and any host with a
 * managed identity (`IDENTITY_ENDPOINT`, `MSI_ENDPOINT`). A key on local disk is not acceptable there.
 */
export const AZURE_HOST_MARKERS = ['WEBSITE_INSTANCE_ID', 'WEBSITE_SITE_NAME', 'CONTAINER_APP_NAME', 'IDENTITY_ENDPOINT', 'MSI_ENDPOINT'] as const;

/** Key Vault's limits, enforced locally so that what works on a laptop also fits in Azure. */
const MAX_VALUE_BYTES = 25 * 1024;
const MAX_CONTENT_TYPE_CHARS = 255;

const FORMAT_VERSION = 1;
const FILE_SUFFIX = '.secret.json';

export class LocalSecretStoreRefusedError extends Error {
  constructor(marker: string) {
    super(`LocalSecretStore refuses to run on Azure (${marker} is set); configure KEY_VAULT_URI so secrets live in Key Vault`);
    this.name = 'LocalSecretStoreRefusedError';
  }
}

/** A stored secret that cannot be read back. Names the secret and the likely cause, never the contents. */
export class LocalSecretUnreadableError extends Error {
  readonly secretName: string;
  constructor(secretName: string, reason: string) {
    super(`local secret "${secretName}" cannot be read: ${reason}`);
    this.name = 'LocalSecretUnreadableError';
    this.secretName = secretName;
  }
}

export interface LocalSecretStoreOptions {
  /** 32 bytes (AES-256); `LOCAL_SECRET_KEY`. */
  key: Buffer;
  directory: string;
  /** Checked for Azure host markers; a parameter so tests can pass their own. */
  env?: NodeJS.ProcessEnv;
}

interface EncryptedFile {
  v: number;
  iv: string;
  tag: string;
  data: string;
}

interface Plain {
  name: string;
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  updated: string;
}

/**
 * Secrets for local runs and tests: one AES-256-GCM encrypted file per secret, so a copied
 * `.local-secrets` directory is useless without `LOCAL_SECRET_KEY`. contentType and tags sit inside
 * the ciphertext because tags can name tenants.
 */
export class LocalSecretStore implements SecretStore {
  readonly kind = 'local' as const;
  readonly #key: Buffer;
  readonly #directory: string;
  #ready: Promise<void> | undefined;

  constructor(options: LocalSecretStoreOptions) {
    const env = options.env ?? process.env;
    const marker = AZURE_HOST_MARKERS.find((name) => Boolean(env[name]));
    if (marker) throw new LocalSecretStoreRefusedError(marker);
    if (options.key.length !== 32) throw new Error('LocalSecretStore needs a 32-byte key (LOCAL_SECRET_KEY)');
    // A private copy: the caller's buffer may be zeroed or reused after construction.
    this.#key = Buffer.from(options.key);
    this.#directory = path.resolve(options.directory);
  }

  async get(name: string): Promise<string | undefined> {
    assertSecretName(name);
    let raw: string;
    try {
      raw = await fs.readFile(this.#file(name), 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw new LocalSecretUnreadableError(name, `file read failed (${errnoCode(err) ?? 'unknown error'})`);
    }
    return this.#decrypt(name, raw).value;
  }

  async set(name: string, value: string, options: { contentType?: string; tags?: Record<string, string> } = {}): Promise<void> {
    assertSecretName(name);
    if (Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES) throw new Error(`secret "${name}" is larger than Key Vault's 25 KB limit`);
    if (options.contentType !== undefined && options.contentType.length > MAX_CONTENT_TYPE_CHARS) {
      throw new Error(`secret "${name}" has a contentType longer than ${MAX_CONTENT_TYPE_CHARS} characters`);
    }
    await this.#ensureDirectory();
    const plain: Plain = {
      name,
      value,
      ...(options.contentType !== undefined ? { contentType: options.contentType } : {}),
      ...(options.tags !== undefined ? { tags: { ...options.tags } } : {}),
      updated: new Date().toISOString(),
    };
    const target = this.#file(name);
    // Unique per writer, so two processes never write into the same temp file; rename is atomic
    // on one filesystem, so readers see the old file or the new one, never a torn one.
    const temp = `${target}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await fs.writeFile(temp, this.#encrypt(name, plain), { mode: 0o600, flag: 'wx' });
      await renameWithRetry(temp, target);
    } catch (err) {
      await fs.rm(temp, { force: true });
      throw new Error(`local secret "${name}" could not be written (${errnoCode(err) ?? 'unknown error'})`);
    }
  }

  async delete(name: string): Promise<void> {
    assertSecretName(name);
    try {
      await fs.unlink(this.#file(name));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw new Error(`local secret "${name}" could not be deleted (${errnoCode(err) ?? 'unknown error'})`);
    }
  }

  async healthCheck(): Promise<boolean> {
    try {
      await this.#ensureDirectory();
      await fs.access(this.#directory, fsConstants.R_OK | fsConstants.W_OK);
      const probe = path.join(this.#directory, `.probe.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
      await fs.writeFile(probe, '', { mode: 0o600, flag: 'wx' });
      await fs.rm(probe, { force: true });
      await fs.readdir(this.#directory);
      return true;
    } catch {
      return false;
    }
  }

  // Key Vault names are case-insensitive; lower-casing the file name gives the same semantics on
  // every filesystem (Linux is case-sensitive, macOS and Windows are not).
  #file(name: string): string {
    return path.join(this.#directory, `${name.toLowerCase()}${FILE_SUFFIX}`);
  }

  #ensureDirectory(): Promise<void> {
    this.#ready ??= fs.mkdir(this.#directory, { recursive: true, mode: 0o700 }).then(
      () => undefined,
      (err: unknown) => {
        this.#ready = undefined;
        throw err;
      },
    );
    return this.#ready;
  }

  #encrypt(name: string, plain: Plain): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(aad(name));
    const data = Buffer.concat([cipher.update(JSON.stringify(plain), 'utf8'), cipher.final()]);
    const file: EncryptedFile = { v: FORMAT_VERSION, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
    return JSON.stringify(file);
  }

  #decrypt(name: string, raw: string): Plain {
    const file = parseEncryptedFile(raw);
    if (!file) throw new LocalSecretUnreadableError(name, 'the file is not in the expected format');
    let text: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(file.iv, 'base64'));
      // The name is authenticated data: a file renamed onto another secret's name fails here.
      decipher.setAAD(aad(name));
      decipher.setAuthTag(Buffer.from(file.tag, 'base64'));
      text = Buffer.concat([decipher.update(Buffer.from(file.data, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      // OpenSSL's message says nothing useful; the cause is almost always a changed LOCAL_SECRET_KEY.
      throw new LocalSecretUnreadableError(name, 'decryption failed (wrong LOCAL_SECRET_KEY, or the file was altered)');
    }
    const plain = parsePlain(text);
    if (!plain) throw new LocalSecretUnreadableError(name, 'the decrypted content is not in the expected format');
    return plain;
  }
}

function aad(name: string): Buffer {
  return Buffer.from(`itil-next-local-secret:v${FORMAT_VERSION}:${name.toLowerCase()}`, 'utf8');
}

function parseEncryptedFile(raw: string): EncryptedFile | undefined {
  const parsed = safeJson(raw);
  if (!isRecord(parsed)) return undefined;
  const { v, iv, tag, data } = parsed;
  if (v !== FORMAT_VERSION || typeof iv !== 'string' || typeof tag !== 'string' || typeof data !== 'string') return undefined;
  if (Buffer.from(iv, 'base64').length !== 12 || Buffer.from(tag, 'base64').length !== 16) return undefined;
  return { v, iv, tag, data };
}

function parsePlain(text: string): Plain | undefined {
  const parsed = safeJson(text);
  if (!isRecord(parsed) || typeof parsed.name !== 'string' || typeof parsed.value !== 'string' || typeof parsed.updated !== 'string') return undefined;
  const plain: Plain = { name: parsed.name, value: parsed.value, updated: parsed.updated };
  if (typeof parsed.contentType === 'string') plain.contentType = parsed.contentType;
  if (isRecord(parsed.tags)) {
    plain.tags = Object.fromEntries(Object.entries(parsed.tags).filter((e): e is [string, string] => typeof e[1] === 'string'));
  }
  return plain;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errnoCode(err: unknown): string | undefined {
  return isRecord(err) && typeof err.code === 'string' ? err.code : undefined;
}

/** Windows refuses to replace a file another process has open for a moment; POSIX never does. */
async function renameWithRetry(from: string, to: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.rename(from, to);
      return;
    } catch (err) {
      const code = errnoCode(err);
      if (attempt >= 5 || (code !== 'EPERM' && code !== 'EACCES' && code !== 'EBUSY')) throw err;
      await new Promise((resolve) => setTimeout(resolve, 10 * 2 ** attempt));
    }
  }
}
