import https from 'node:https';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import type { Client, Middleware } from '@microsoft/microsoft-graph-client';
import { graphCredentialProviders, graphSdk, identitySdk } from './sdk';
import { KeyedRateLimiter, SharedRateLimiter, type DistributedBudget } from '../base';
import { AppCredentialSource, type AppCredentialMaterial } from './appCredential';
import { ImmutableIdMiddleware, MailboxLimiterMiddleware, type ThrottleEvent } from './middleware';
import { AgentTransport } from './transport';

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
export const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com';

/** An Entra tenant id as Graph and the admin-consent callback give it: a GUID. */
export const ENTRA_TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A tenant as the app's home tenant may be configured: its GUID or a verified domain. */
const TENANT_NAME = /^[0-9A-Za-z][0-9A-Za-z.-]{0,252}$/;

export interface GraphClientFactoryOptions {
  clientId: string;
  /** The client secret, when no `appCredential` is given (secret mode). */
  clientSecret?: string;
  /** What proves the app (secret or certificate, read once per process); default: `clientSecret`. */
  appCredential?: AppCredentialSource;
  /** `https://graph.microsoft.com`, or a fake's origin in tests. */
  baseUrl: string;
  authorityHost: string;
  /** A CA to trust for both token and Graph calls (tests' self-signed fake); verification stays on. */
  tls?: { ca: string };
  /** Outlook: 4 concurrent requests per app and mailbox. */
  maxConcurrentPerMailbox?: number;
  /** Outlook: 10,000 requests per 10 minutes per app and mailbox. Divide by the instance count when scaled out. */
  requestsPerWindow?: number;
  windowMs?: number;
  /** Makes the request window hold across instances (RateBudgets rows); per process when omitted. */
  budget?: DistributedBudget;
  /** Longest Retry-After sat through inside one call. */
  maxThrottleWaitMs?: number;
  onThrottled?: (tenant: string, event: ThrottleEvent) => void;
}

/**
 * Graph clients per customer tenant, app-only: one credential per Entra tenant (MSAL caches and refreshes
 * its token), one limiter for the whole process keyed by tenant + mailbox, and `Prefer: IdType="ImmutableId"`
 * on every call. The credential is a `ClientCertificateCredential` or a `ClientSecretCredential`, chosen when
 * the first token is asked for (the certificate is read from the secret store then, not at construction).
 */
export class GraphClientFactory {
  readonly limiter: KeyedRateLimiter;
  readonly #shared: SharedRateLimiter | undefined;
  readonly #credentials = new Map<string, TokenCredential>();
  readonly #clients = new Map<string, Client>();
  readonly #agent: https.Agent | undefined;
  readonly appCredential: AppCredentialSource;

  constructor(private readonly opts: GraphClientFactoryOptions) {
    this.appCredential = opts.appCredential ?? new AppCredentialSource({ mode: 'secret', clientSecret: opts.clientSecret, secrets: { get: async () => undefined } });
    this.limiter = new KeyedRateLimiter({
      limit: opts.requestsPerWindow ?? 10_000,
      intervalMs: opts.windowMs ?? 10 * 60_000,
      maxConcurrent: opts.maxConcurrentPerMailbox ?? 4,
    });
    this.#shared = opts.budget ? new SharedRateLimiter(opts.budget, [{ limit: opts.requestsPerWindow ?? 10_000, intervalMs: opts.windowMs ?? 10 * 60_000 }]) : undefined;
    this.#agent = opts.tls ? new https.Agent({ ca: opts.tls.ca, keepAlive: true }) : undefined;
  }

  credential(entraTenantId: string): TokenCredential {
    if (!TENANT_NAME.test(entraTenantId)) throw new Error('Entra tenant must be a GUID or a domain name');
    let cred = this.#credentials.get(entraTenantId);
    if (!cred) {
      cred = new AppTokenCredential(this.appCredential, (material) => this.#credentialFor(entraTenantId, material));
      this.#credentials.set(entraTenantId, cred);
    }
    return cred;
  }

  #credentialFor(entraTenantId: string, material: AppCredentialMaterial): TokenCredential {
    const custom = this.opts.authorityHost.replace(/\/+$/, '') !== DEFAULT_AUTHORITY_HOST;
    const options = {
      authorityHost: this.opts.authorityHost,
      // Instance discovery asks login.microsoftonline.com which authorities exist; a private or fake
      // authority is not among them, so it is trusted as configured instead.
      ...(custom ? { disableInstanceDiscovery: true } : {}),
      ...(this.opts.tls ? { tlsOptions: { ca: this.opts.tls.ca } } : {}),
    };
    return material.kind === 'certificate'
      ? // No x5c: the certificate is uploaded to the app registration, which is all Entra needs (subject-name/issuer
        // auth, which needs the chain, is for first-party apps).
        new (identitySdk().ClientCertificateCredential)(entraTenantId, this.opts.clientId, { certificate: material.certificate.pem }, { ...options, sendCertificateChain: false })
      : new (identitySdk().ClientSecretCredential)(entraTenantId, this.opts.clientId, material.secret, options);
  }

  /** A token for the tenant right now; throws what `@azure/identity` throws (see `describeAuthError`). */
  async token(entraTenantId: string, signal?: AbortSignal): Promise<void> {
    await this.credential(entraTenantId).getToken(GRAPH_SCOPE, signal ? { abortSignal: signal } : {});
  }

  client(entraTenantId: string): Client {
    let client = this.#clients.get(entraTenantId);
    if (client) return client;
    const { AuthenticationHandler, Client, HTTPMessageHandler, TelemetryHandler } = graphSdk();
    const auth = new AuthenticationHandler(new (graphCredentialProviders().TokenCredentialAuthenticationProvider)(this.credential(entraTenantId), { scopes: [GRAPH_SCOPE] }));
    const chain: Middleware[] = [
      auth,
      new ImmutableIdMiddleware(),
      new MailboxLimiterMiddleware({
        limiter: this.limiter,
        ...(this.#shared ? { shared: this.#shared } : {}),
        keyPrefix: entraTenantId,
        ...(this.opts.maxThrottleWaitMs !== undefined ? { maxWaitMs: this.opts.maxThrottleWaitMs } : {}),
        ...(this.opts.onThrottled ? { onThrottled: (e: ThrottleEvent) => this.opts.onThrottled?.(entraTenantId, e) } : {}),
      }),
      new TelemetryHandler(),
      this.#agent ? new AgentTransport(this.#agent) : new HTTPMessageHandler(),
    ];
    const base = new URL(this.opts.baseUrl);
    client = Client.initWithMiddleware({
      baseUrl: base.origin,
      defaultVersion: 'v1.0',
      middleware: chain,
      // The SDK attaches the token only to Graph hosts; a fake's host must be named (hostname, no port).
      ...(base.hostname !== 'graph.microsoft.com' ? { customHosts: new Set([base.hostname]) } : {}),
    });
    this.#clients.set(entraTenantId, client);
    return client;
  }

  get baseUrl(): string {
    return new URL(this.opts.baseUrl).origin;
  }
}

/**
 * One Entra tenant's credential: asks the app credential source which material to use at each token request
 * (so a certificate that could not be loaded at first is picked up once it can), and keeps one MSAL credential
 * per kind, whose token cache then serves repeated requests.
 */
class AppTokenCredential implements TokenCredential {
  readonly #inner = new Map<AppCredentialMaterial['kind'], TokenCredential>();

  constructor(
    private readonly source: AppCredentialSource,
    private readonly build: (material: AppCredentialMaterial) => TokenCredential,
  ) {}

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    const material = await this.source.material();
    let inner = this.#inner.get(material.kind);
    if (!inner) {
      inner = this.build(material);
      this.#inner.set(material.kind, inner);
    }
    return inner.getToken(scopes, options);
  }
}

const REVOKED_CODES = new Set(['AADSTS700016', 'AADSTS65001', 'AADSTS650052', 'AADSTS7000112', 'AADSTS500011']);

/** What an `@azure/identity` failure means for the integration, without its message (which may echo request data). */
export function describeAuthError(err: unknown): { revoked: boolean; code: string | undefined; status: number | undefined } {
  if (err instanceof identitySdk().AuthenticationError) {
    const code = err.errorResponse?.error;
    const desc = err.errorResponse?.errorDescription ?? '';
    const aadsts = /AADSTS\d+/.exec(desc)?.[0];
    // The app is unknown to the customer's tenant, or lacks consent there: an admin removed it or never
    // consented. A bad app secret (AADSTS7000215) is ours to fix and is not counted as revoked.
    const revoked = aadsts !== undefined && REVOKED_CODES.has(aadsts);
    return { revoked, code: aadsts ?? code, status: err.statusCode };
  }
  // MSAL server errors often arrive wrapped (AuthenticationRequiredError, CredentialUnavailableError)
  // with only the message: "<error>: … AADSTS<code>: …". Read the codes, never keep the message.
  const message = err instanceof Error ? err.message : '';
  const aadsts = /AADSTS\d+/.exec(message)?.[0];
  if (aadsts) return { revoked: REVOKED_CODES.has(aadsts), code: aadsts, status: undefined };
  return { revoked: false, code: /^([a-z_]{3,40}):/.exec(message)?.[1] ?? (err as { code?: string } | undefined)?.code, status: undefined };
}
