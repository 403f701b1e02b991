export { MsGraphConnector } from './connector';
export { GraphClientFactory, describeAuthError, ENTRA_TENANT_ID, GRAPH_SCOPE, DEFAULT_AUTHORITY_HOST, type GraphClientFactoryOptions } from './client';
export { createGraphServices, getGraphServices, GRAPH_BUDGET_MARGIN_MS, GraphNotConfiguredError, type GraphServices } from './services';
export {
  cleanSubject,
  classifyMessage,
  commentFromEmail,
  createTicketFromEmail,
  getConversationThread,
  getMessage,
  htmlToPlainText,
  replyToThread,
  stripQuotedReply,
  ticketCommentSchema,
  ticketCreateRequestSchema,
  MAX_TEXT_BYTES,
  type TicketComment,
  type TicketCreateRequest,
  type ReplyInput,
} from './mail';
export { graphMessageSchema, type GraphMessage } from './messages';
export { createEvent, getFreeBusy, newEventSchema, type NewEvent, type FreeBusy, type CreatedEvent } from './calendar';
export { findUserByEmail, getUser, listGroupMembers, type DirectoryUser, type GroupMember } from './users';
export {
  calendarEventRequestSchema,
  calendarEventResponseSchema,
  createCalendarEvent,
  directoryUserResponseSchema,
  freeBusy,
  groupMembers,
  groupMembersResponseSchema,
  scheduleRequestSchema,
  scheduleResponseSchema,
  userByEmail,
} from './directory';
export { inboxDelta, type DeltaResult } from './delta';
export { SubscriptionService, clientStateHash, clientStateMatches, DOCUMENTED_MAX_MINUTES } from './subscriptions';
export {
  acceptNotifications,
  graphDeliveryMessageSchema,
  graphDeliveryItemSchema,
  MAX_NOTIFICATION_BYTES,
  MAX_NOTIFICATION_ITEMS,
  MAX_VALIDATION_TOKEN_LENGTH,
  type AcceptResult,
  type NotificationKind,
  type GraphDeliveryMessage,
  type GraphDeliveryItem,
} from './notifications';
export { routeNotifications, ROUTE_CONCURRENCY, type RouteResult } from './deliveries';
export { EntraLinkCache } from './store';
export { processWorkItem, queueMaintenance, ticketRefFor, CREATE_EVENT, COMMENT_EVENT, MAIL_SOURCE, MAIL_CLAIM_STALE_MS, MailInProgressError, mailClaimId, type WorkOutcome, type WorkOptions } from './worker';
export { graphWorkItemSchema, type GraphWorkItem, type GraphWorkItemInput } from './workItems';
export { watchMailbox, unwatchMailbox, mailboxView, syncMailbox, ensureSubscription, MAX_MAILBOXES_PER_INTEGRATION } from './mailboxes';
export { replyFromEngine, replyRequestSchema, type ReplyRequest, type ReplyOutcome } from './reply';
export {
  startAdminConsent,
  beginSignIn,
  completeCallback,
  completeSignIn,
  completeAdminConsent,
  consentCallbackQuerySchema,
  adminConsentUrl,
  callbackUrl,
  CONSENT_PURPOSE,
  SIGN_IN_PURPOSE,
  requireGraphIntegration,
  type ConsentOutcome,
} from './onboarding';
export { EntraSignIn, SignInFailedError } from './signIn';
export { receiveNotificationRequest, validationResponse } from './webhook';
export { ImmutableIdMiddleware, MailboxLimiterMiddleware, limiterKey } from './middleware';
export { AgentTransport } from './transport';
export type { Mailbox, Subscription } from './store';
