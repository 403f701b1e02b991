import { randomBytes, randomUUID } from 'node:crypto';

/**
 * The fake's data: Entra tenants with users, groups, mailboxes (messages by folder), events and
 * subscriptions. Everything is scoped by the Entra tenant the access token was issued for, as in Graph.
 */

export interface FakeUser {
  id: string;
  displayName: string;
  mail: string;
  userPrincipalName: string;
  jobTitle?: string;
}

export interface FakeGroup {
  id: string;
  displayName: string;
  /** Direct members: user or group ids. */
  members: string[];
}

export interface Recipient {
  emailAddress: { name?: string; address: string };
}

export interface FakeAttachment {
  id: string;
  name: string;
  contentType: string;
  size: number;
  isInline: boolean;
}

export interface FakeMessage {
  /** Delivery order inside the fake; delta tokens are positions in it. */
  seq: number;
  tenantId: string;
  userId: string;
  folder: 'inbox' | 'sentitems';
  /** Returned with `Prefer: IdType="ImmutableId"`; survives moves. */
  immutableId: string;
  /** Returned otherwise; the fake changes it when a message moves, as Exchange does. */
  restId: string;
  conversationId: string;
  internetMessageId: string;
  subject: string;
  body: { contentType: 'html' | 'text'; content: string };
  bodyPreview: string;
  from: Recipient;
  sender: Recipient;
  toRecipients: Recipient[];
  ccRecipients: Recipient[];
  replyTo: Recipient[];
  receivedDateTime: string;
  sentDateTime: string;
  importance: 'low' | 'normal' | 'high';
  isRead: boolean;
  internetMessageHeaders: Array<{ name: string; value: string }>;
  attachments: FakeAttachment[];
}

export interface FakeEvent {
  id: string;
  tenantId: string;
  userId: string;
  calendarId: string;
  subject: string;
  body?: { contentType: string; content: string };
  start: { dateTime: string; timeZone: string };
  end: { dateTime: string; timeZone: string };
  attendees: Array<{ emailAddress: { address: string; name?: string }; type?: string }>;
  location?: { displayName: string };
  showAs: string;
  transactionId?: string;
}

export interface FakeSubscription {
  id: string;
  tenantId: string;
  /** The app (client id) that created it. */
  appId: string;
  resource: string;
  /** User id the resource points at (messages of its inbox). */
  userId: string;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl?: string;
  clientState?: string;
  expirationDateTime: string;
  latestSupportedTlsVersion: string;
  /** Created with `Prefer: IdType="ImmutableId"`: notifications then carry immutable ids. */
  immutableIds: boolean;
  reauthorizations: number;
}

export interface FakeTenant {
  id: string;
  users: Map<string, FakeUser>;
  groups: Map<string, FakeGroup>;
}

export function newGuid(): string {
  return randomUUID();
}

/** Exchange ids are base64 with `+`, `/` and `=`; ours are too, so callers must encode them. */
export function exchangeLikeId(prefix: string): string {
  const raw = Buffer.concat([Buffer.from(prefix), randomBytes(30)]).toString('base64');
  // Make sure the characters that need encoding appear in every id.
  return `${raw.slice(0, 20)}+/${raw.slice(20)}=`;
}

export function internetMessageId(domain: string): string {
  return `<${randomBytes(10).toString('hex')}@${domain}>`;
}

export function addressOf(r: Recipient | undefined): string {
  return (r?.emailAddress.address ?? '').toLowerCase();
}
