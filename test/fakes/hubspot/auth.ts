import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { registerSecret } from '../../helpers/secretScan';
import type { FakePortal } from './types';
import { empty, hubspotError, json, oauthError, type Reply } from './wire';

/**
 * OAuth as HubSpot runs it: one-time authorization codes bound to a redirect URI, refresh tokens
 * that do not expire (and are not rotated unless asked), access tokens with a TTL, the
 * date-versioned token/introspect/revoke endpoints, the legacy v1 endpoints, private-app tokens.
 */

export interface PortalInfo {
  portal: FakePortal;
  userId: number;
}

export interface AccessTokenRec {
  token: string;
  hubId: number;
  kind: 'oauth' | 'private';
  scopes: string[];
  expiresAt: number;
  /** Rate-limit key: HubSpot limits per installed portal and app. */
  appKey: string;
  appId: number;
  revoked: boolean;
}

interface RefreshTokenRec {
  token: string;
  hubId: number;
  scopes: string[];
  revoked: boolean;
}

interface CodeRec {
  hubId: number;
  redirectUri: string;
  expiresAt: number;
  used: boolean;
}

export interface OAuthConfig {
  clientId: string;
  clientSecret: string;
  appId: number;
  ttlSeconds: number;
  rotateRefreshTokens: boolean;
}

const CODE_TTL_MS = 10 * 60_000;

const TokenForm = z.object({
  grant_type: z.string().optional(),
  client_id: z.string().optional(),
  client_secret: z.string().optional(),
  redirect_uri: z.string().optional(),
  code: z.string().optional(),
  refresh_token: z.string().optional(),
  code_verifier: z.string().optional(),
  scope: z.string().optional(),
});

const TokenInfoForm = z.object({
  client_id: z.string().optional(),
  client_secret: z.string().optional(),
  token: z.string().optional(),
  token_type_hint: z.string().optional(),
});

const PrivateAppInfoBody = z.object({ tokenKey: z.string().min(1) });

export type AuthResult = { ok: true; token: AccessTokenRec } | { ok: false; reply: Reply };

const NO_CREDENTIALS =
  'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview';

function formOf(body: string): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(body));
}

function agoText(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes >= 1440) return `${Math.floor(minutes / 1440)} day(s)`;
  if (minutes >= 60) return `${Math.floor(minutes / 60)} hour(s)`;
  return `${minutes} minute(s)`;
}

export class OAuthState {
  readonly accessTokens = new Map<string, AccessTokenRec>();
  private readonly refreshTokens = new Map<string, RefreshTokenRec>();
  private readonly codes = new Map<string, CodeRec>();
  private nextPrivateAppId = 7_000_001;
  readonly revokedViaApi: string[] = [];

  constructor(private readonly cfg: OAuthConfig, private readonly portalOf: (hubId: number) => PortalInfo | undefined) {}

  issueCode(hubId: number, redirectUri: string): string {
    if (!this.portalOf(hubId)) throw new Error(`unknown portal ${hubId}`);
    const code = randomUUID();
    registerSecret(code, 'HubSpot authorization code');
    this.codes.set(code, { hubId, redirectUri, expiresAt: Date.now() + CODE_TTL_MS, used: false });
    return code;
  }

  createPrivateAppToken(hubId: number, scopes: string[]): string {
    if (!this.portalOf(hubId)) throw new Error(`unknown portal ${hubId}`);
    const token = `pat-na1-${randomUUID()}`;
    registerSecret(token, 'HubSpot private-app token');
    const appId = this.nextPrivateAppId++;
    this.accessTokens.set(token, { token, hubId, kind: 'private', scopes, expiresAt: Infinity, appKey: `private:${appId}`, appId, revoked: false });
    return token;
  }

  expire(hubId?: number): void {
    const past = Date.now() - 1;
    for (const t of this.accessTokens.values()) {
      if (t.kind === 'oauth' && (hubId === undefined || t.hubId === hubId)) t.expiresAt = Math.min(t.expiresAt, past);
    }
  }

  revokeRefresh(hubId: number): void {
    for (const r of this.refreshTokens.values()) if (r.hubId === hubId) r.revoked = true;
  }

  /** Uninstall: every token of the public app on that portal stops working. */
  uninstall(hubId: number): void {
    this.revokeRefresh(hubId);
    for (const t of this.accessTokens.values()) if (t.hubId === hubId && t.kind === 'oauth') t.revoked = true;
  }

  authenticate(authorization: string | undefined): AuthResult {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    const rec = m ? this.accessTokens.get(m[1] as string) : undefined;
    if (!rec || rec.revoked || !this.portalOf(rec.hubId)) return { ok: false, reply: hubspotError(401, 'INVALID_AUTHENTICATION', NO_CREDENTIALS) };
    const now = Date.now();
    if (now >= rec.expiresAt) {
      return { ok: false, reply: hubspotError(401, 'EXPIRED_AUTHENTICATION', `The OAuth token used to make this call expired ${agoText(now - rec.expiresAt)} ago.`) };
    }
    return { ok: true, token: rec };
  }

  /** `POST /oauth/{version}/token` and the legacy `POST /oauth/v1/token`. */
  token(body: string, legacy: boolean): Reply {
    const form = TokenForm.parse(formOf(body));
    const grant = form.grant_type;
    if (grant !== 'authorization_code' && grant !== 'refresh_token') {
      return oauthError(400, 'unsupported_grant_type', 'BAD_GRANT_TYPE', `grant_type must be authorization_code or refresh_token`);
    }
    const client = this.checkClient(form.client_id, form.client_secret);
    if (client) return client;

    let hubId: number;
    let refresh: RefreshTokenRec;
    if (grant === 'authorization_code') {
      const code = form.code ? this.codes.get(form.code) : undefined;
      if (!code || code.used || Date.now() >= code.expiresAt) return oauthError(400, 'invalid_grant', 'BAD_AUTH_CODE', 'missing or unknown auth code');
      if (form.redirect_uri !== code.redirectUri) return oauthError(400, 'invalid_grant', 'BAD_REDIRECT_URI', 'redirect_uri does not match the one the code was issued for');
      code.used = true;
      hubId = code.hubId;
      const info = this.portalOf(hubId) as PortalInfo;
      refresh = this.newRefreshToken(hubId, info.portal.scopes);
    } else {
      const found = form.refresh_token ? this.refreshTokens.get(form.refresh_token) : undefined;
      if (!found || found.revoked || !this.portalOf(found.hubId)) return oauthError(400, 'invalid_grant', 'BAD_REFRESH_TOKEN', 'refresh token is invalid, expired or revoked');
      hubId = found.hubId;
      refresh = found;
      if (this.cfg.rotateRefreshTokens) {
        found.revoked = true;
        refresh = this.newRefreshToken(hubId, found.scopes);
      }
    }
    const info = this.portalOf(hubId) as PortalInfo;
    const access = this.newAccessToken(hubId, refresh.scopes);
    const common = { access_token: access.token, refresh_token: refresh.token, expires_in: this.cfg.ttlSeconds, token_type: 'bearer', hub_id: hubId, scopes: refresh.scopes };
    return json(200, legacy ? common : { ...common, token_use: 'access_token', user_id: info.userId });
  }

  /** `POST /oauth/{version}/token/introspect`: RFC 7662 with HubSpot's metadata; unknown tokens are `{active:false}`. */
  introspect(body: string): Reply {
    const form = TokenInfoForm.parse(formOf(body));
    const client = this.checkClient(form.client_id, form.client_secret);
    if (client) return client;
    const token = form.token ?? '';
    const preferRefresh = form.token_type_hint === 'refresh_token';
    const access = this.liveAccess(token);
    const refresh = this.liveRefresh(token);
    if (refresh && (preferRefresh || !access)) return json(200, { active: true, ...this.refreshInfo(refresh), token_use: 'refresh_token' });
    if (access) return json(200, { active: true, ...this.accessInfo(access), token_type: 'bearer', token_use: 'access_token', client_id: this.cfg.clientId });
    return json(200, { active: false });
  }

  /** `POST /oauth/{version}/token/revoke`: revokes a refresh token; RFC 7009 answers 200 even for unknown tokens. */
  revoke(body: string): Reply {
    const form = TokenInfoForm.parse(formOf(body));
    const client = this.checkClient(form.client_id, form.client_secret);
    if (client) return client;
    const token = form.token ?? '';
    const refresh = this.refreshTokens.get(token);
    if (refresh && !refresh.revoked) {
      refresh.revoked = true;
      this.revokedViaApi.push(token);
    }
    const access = this.accessTokens.get(token);
    if (access && access.kind === 'oauth') access.revoked = true;
    return empty(200);
  }

  legacyAccessTokenInfo(token: string): Reply {
    const rec = this.accessTokens.get(token);
    if (!rec || rec.kind !== 'oauth' || rec.revoked) return hubspotError(404, 'OBJECT_NOT_FOUND', 'access token not found');
    if (Date.now() >= rec.expiresAt) return hubspotError(401, 'EXPIRED_AUTHENTICATION', `The OAuth token used to make this call expired ${agoText(Date.now() - rec.expiresAt)} ago.`);
    return json(200, { ...this.accessInfo(rec), token_type: 'access' });
  }

  legacyRefreshTokenInfo(token: string): Reply {
    const rec = this.liveRefresh(token);
    if (!rec) return oauthError(400, 'invalid_grant', 'BAD_REFRESH_TOKEN', 'refresh token is invalid, expired or revoked');
    return json(200, this.refreshInfo(rec));
  }

  legacyDeleteRefreshToken(token: string): Reply {
    const rec = this.liveRefresh(token);
    if (!rec) return oauthError(400, 'invalid_grant', 'BAD_REFRESH_TOKEN', 'refresh token is invalid, expired or revoked');
    rec.revoked = true;
    this.revokedViaApi.push(token);
    return empty(204);
  }

  /** `POST /oauth/v2/private-apps/get/access-token-info` with `{tokenKey}`. */
  privateAppTokenInfo(body: unknown): Reply {
    const parsed = PrivateAppInfoBody.safeParse(body);
    const rec = parsed.success ? this.accessTokens.get(parsed.data.tokenKey) : undefined;
    if (!rec || rec.kind !== 'private' || rec.revoked) return hubspotError(401, 'INVALID_AUTHENTICATION', 'The access token is not valid');
    const info = this.portalOf(rec.hubId) as PortalInfo;
    return json(200, { userId: info.userId, hubId: rec.hubId, appId: rec.appId, scopes: rec.scopes });
  }

  private checkClient(clientId: string | undefined, clientSecret: string | undefined): Reply | undefined {
    if (clientId !== this.cfg.clientId) return oauthError(400, 'invalid_client', 'BAD_CLIENT_ID', 'missing or unknown client_id');
    if (clientSecret !== this.cfg.clientSecret) return oauthError(400, 'invalid_client', 'BAD_CLIENT_SECRET', 'client_secret does not match the client_id');
    return undefined;
  }

  private liveAccess(token: string): AccessTokenRec | undefined {
    const rec = this.accessTokens.get(token);
    return rec && rec.kind === 'oauth' && !rec.revoked && Date.now() < rec.expiresAt ? rec : undefined;
  }

  private liveRefresh(token: string): RefreshTokenRec | undefined {
    const rec = this.refreshTokens.get(token);
    return rec && !rec.revoked && this.portalOf(rec.hubId) ? rec : undefined;
  }

  private newRefreshToken(hubId: number, scopes: string[]): RefreshTokenRec {
    const rec: RefreshTokenRec = { token: `na1-${randomUUID()}`, hubId, scopes: [...scopes], revoked: false };
    this.refreshTokens.set(rec.token, rec);
    registerSecret(rec.token, 'HubSpot refresh token');
    return rec;
  }

  private newAccessToken(hubId: number, scopes: string[]): AccessTokenRec {
    const rec: AccessTokenRec = {
      token: `C${randomBytes(90).toString('base64url')}`,
      hubId,
      kind: 'oauth',
      scopes: [...scopes],
      expiresAt: Date.now() + this.cfg.ttlSeconds * 1000,
      appKey: `app:${this.cfg.appId}:${hubId}`,
      appId: this.cfg.appId,
      revoked: false,
    };
    this.accessTokens.set(rec.token, rec);
    registerSecret(rec.token, 'HubSpot access token');
    return rec;
  }

  private accessInfo(rec: AccessTokenRec): Record<string, unknown> {
    const info = this.portalOf(rec.hubId) as PortalInfo;
    const expiresIn = Math.max(0, Math.floor((rec.expiresAt - Date.now()) / 1000));
    return {
      token: rec.token,
      user: info.portal.userEmail,
      hub_domain: info.portal.hubDomain,
      scopes: rec.scopes,
      hub_id: rec.hubId,
      app_id: rec.appId,
      expires_in: expiresIn,
      user_id: info.userId,
      is_private_distribution: false,
      signed_access_token: {
        expiresAt: rec.expiresAt,
        scopes: rec.scopes.join(' '),
        hubId: rec.hubId,
        userId: info.userId,
        appId: rec.appId,
        hublet: 'na1',
        isUserLevel: false,
        isServiceAccount: false,
        isPrivateDistribution: false,
        installingUserId: info.userId,
        signature: randomBytes(20).toString('base64'),
        newSignature: randomBytes(20).toString('base64'),
        scopeToScopeGroupPks: '',
        trialScopes: '',
        trialScopeToScopeGroupPks: '',
      },
    };
  }

  private refreshInfo(rec: RefreshTokenRec): Record<string, unknown> {
    const info = this.portalOf(rec.hubId) as PortalInfo;
    return {
      token: rec.token,
      user: info.portal.userEmail,
      hub_domain: info.portal.hubDomain,
      scopes: rec.scopes,
      hub_id: rec.hubId,
      client_id: this.cfg.clientId,
      app_id: this.cfg.appId,
      user_id: info.userId,
      token_type: 'refresh',
    };
  }
}
