/** Public types of the fake HubSpot server (re-exported by `index.ts`). */

export interface FakeRateLimit {
  /** Requests per rolling window per installed portal and app (HubSpot: 110 per 10 s for public apps). */
  perTenSeconds?: number;
  /** Search requests per token per tenth of `windowMs` (HubSpot: 5 per second). */
  searchPerSecond?: number;
  /** Requests per UTC day per portal; enforced and reported for private-app tokens only (OAuth calls have no daily limit). */
  dailyLimit?: number;
  /** Length of the rolling window; tests shrink it and keep the ratio (the search window is a tenth of it). */
  windowMs?: number;
  /** HubSpot does not reliably send `Retry-After` on 429; off by default so clients cannot depend on it. */
  sendRetryAfter?: boolean;
}

export interface FakeHubSpotOptions {
  clientId?: string;
  clientSecret?: string;
  /** Lifetime of OAuth access tokens; default 1800 (HubSpot's 30 minutes). */
  accessTokenTtlSeconds?: number;
  rateLimit?: FakeRateLimit;
  /** Search cannot page past this many results; default 10_000. */
  searchResultCap?: number;
  /** A write becomes visible to search this long after it happened; default 0. */
  indexLagMs?: number;
  /** Hand out a new refresh token on every refresh (HubSpot does not; tests of token persistence turn it on). */
  rotateRefreshTokens?: boolean;
}

export interface FakePortal {
  hubId: number;
  hubDomain: string;
  scopes: string[];
  userEmail: string;
}

export interface FakeFault {
  /** Tested against `"<METHOD> <path>?<query>"`; every request matches when absent. */
  match?: RegExp;
  /** Reply with this status (and `body`, or a HubSpot error body) instead of serving the request. */
  status?: number;
  body?: unknown;
  /** How many matching requests the fault applies to; default 1. */
  times?: number;
  /** Destroy the socket instead of replying. */
  resetConnection?: boolean;
  /** Wait this long first; alone it only slows the reply down. */
  delayMs?: number;
  /**
   * In process only (not across IPC): called when a request meets this fault, and the reply waits until
   * `until` resolves. Together they put requests of different clients in an order a test needs, without
   * timing: "hold this page until that one has failed".
   */
  onMatch?: () => void;
  until?: Promise<unknown>;
}

export interface FakeHubSpotStats {
  requests: number;
  /** Keyed `"<METHOD> <route template>"` with the object type filled in, e.g. `GET /crm/v3/objects/tickets`. */
  byRoute: Record<string, number>;
  /** 429 replies of every policy. */
  rateLimited: number;
  /** Most requests a client *sent* (accepted or not) inside one rolling window for one portal and app; above the limit means the client overran it. */
  maxPerWindowSeen: number;
  /** Most requests being served at the same moment (any portal). */
  maxInFlight: number;
  /** Refresh tokens revoked through the API (legacy DELETE or date-versioned revoke). */
  revokedTokens: string[];
  /** Calls to `/oauth/v1/*`, which stop working on 2027-02-16. */
  legacyOauthCalls: number;
  searchRequests: number;
  faultsInjected: number;
}

export interface WebhookEventInput {
  subscriptionType: string;
  objectId: string | number;
  propertyName?: string;
  propertyValue?: string;
  changeSource?: string;
  sourceId?: string;
  eventId?: number;
  occurredAt?: number;
  attemptNumber?: number;
  mergedObjectIds?: number[];
  /** Extra fields, e.g. association-change fields. */
  extra?: Record<string, unknown>;
}

export interface FakePipelineStage {
  id: string;
  label: string;
  ticketState?: 'OPEN' | 'CLOSED';
}

export interface FakePipeline {
  id: string;
  label: string;
  stages: FakePipelineStage[];
}

export interface FakeHubSpot {
  /** `http://127.0.0.1:<port>`, used as HUBSPOT_API_BASE_URL (the SDK's `basePath`). */
  url: string;
  clientId: string;
  clientSecret: string;
  appId: number;
  close(): Promise<void>;
  addPortal(p?: Partial<FakePortal>): FakePortal;
  /** Simulates the user consenting in the browser: a one-time code (valid 10 min) bound to redirectUri. */
  issueAuthorizationCode(hubId: number, redirectUri: string): string;
  createPrivateAppToken(hubId: number, scopes?: string[]): string;
  /** Every issued access token (of that portal) now answers 401 EXPIRED_AUTHENTICATION. */
  expireAccessTokens(hubId?: number): void;
  /** Refresh → 400 invalid_grant / BAD_REFRESH_TOKEN. */
  revokeRefreshTokens(hubId: number): void;
  /** Portal whose user consents when a browser follows `GET /oauth/authorize`; default the last added. */
  setConsentingPortal(hubId: number): void;
  seed(hubId: number, objectType: string, count: number, make?: (i: number) => Record<string, string>): string[];
  /** Creates (id undefined or unknown) or updates an object and bumps its last-modified date, unless the properties set it. */
  upsertObject(hubId: number, objectType: string, id: string | undefined, properties: Record<string, string>): string;
  archiveObject(hubId: number, objectType: string, id: string): void;
  mergeObjects(hubId: number, objectType: string, primaryId: string, mergedId: string): void;
  /** The default (unlabelled) association, both directions. */
  associate(hubId: number, fromType: string, fromId: string, toType: string, toId: string): void;
  getObject(hubId: number, objectType: string, id: string): { id: string; properties: Record<string, string>; archived: boolean } | undefined;
  /** Live (not archived, not merged away) objects. */
  count(hubId: number, objectType: string): number;
  /** Associated ids of `toType`, for assertions. */
  associations(hubId: number, fromType: string, fromId: string, toType: string): string[];
  setPipelines(hubId: number, pipelines: FakePipeline[]): void;
  injectFault(f: FakeFault): void;
  clearFaults(): void;
  setRateLimit(r: FakeRateLimit | undefined): void;
  setIndexLag(ms: number): void;
  stats(): FakeHubSpotStats;
  resetStats(): void;
  /**
   * From now on, notes when each rate-limited (non-search) API call is counted, as epoch ms with
   * sub-millisecond precision; `resetStats` empties the log. For the benchmark's latency figures.
   */
  recordArrivals(): void;
  arrivals(): number[];
  /** base64 HMAC-SHA256 keyed with the client secret over method + uri + body + timestamp. */
  signV3(method: string, uri: string, body: string, timestamp: number): string;
  sendWebhook(
    targetUrl: string,
    events: Array<Record<string, unknown>>,
    opts?: { timestamp?: number; tamper?: boolean; uriForSignature?: string },
  ): Promise<Response>;
  webhookEvent(hubId: number, e: WebhookEventInput): Record<string, unknown>;
}
