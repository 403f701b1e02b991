import { z } from 'zod';
import { NotFoundError } from '../../platform/errors';
import type { IntegrationId, TenantId } from '../../storage';
import { createEvent, getFreeBusy } from './calendar';
import { toAppError } from './errors';
import { requireActiveIntegration } from './mailboxes';
import type { GraphServices } from './services';
import { findUserByEmail, listGroupMembers, type DirectoryUser } from './users';

/*
 * Calendar and directory reads for the engine's routing and assignment, over HTTP. Every call runs with the
 * app-only token of the integration's own Entra tenant, so a tenant of ours reaches only the Microsoft 365
 * organisation it connected. Inside that organisation the app's Calendars.ReadWrite / User.Read.All reach every
 * user: an admin who wants less scopes the app with an Exchange application access policy (README).
 *
 * Our JSON is snake_case (the seed API's rule); Graph's own shapes (dateTimeTimeZone) pass through unchanged.
 */

const dateTimeTimeZone = z.strictObject({
  // Graph's dateTimeTimeZone: a local date-time without offset (e.g. 2026-03-01T09:30:00), the zone beside it.
  dateTime: z.iso.datetime({ local: true, offset: false }),
  timeZone: z.string().min(1).max(64),
});
const address = z.string().email().max(320);

export const calendarEventRequestSchema = z.strictObject({
  /** Whose calendar: a user's or a shared mailbox's address (or object id). */
  mailbox: z.string().min(1).max(320),
  /** A calendar of that mailbox other than the default one (e.g. a team calendar). */
  calendar_id: z.string().min(1).max(512).optional(),
  subject: z.string().min(1).max(255),
  body_html: z.string().max(64 * 1024).optional(),
  start: dateTimeTimeZone,
  end: dateTimeTimeZone,
  attendees: z.array(z.strictObject({ address, name: z.string().max(256).optional(), type: z.enum(['required', 'optional', 'resource']).default('required') })).max(500).default([]),
  location: z.string().max(255).optional(),
  show_as: z.enum(['free', 'tentative', 'busy', 'oof', 'workingElsewhere']).default('busy'),
  /** Graph de-duplicates creates with the same transactionId: send the ticket id (or an idempotency key) to make a retry safe. */
  transaction_id: z.string().min(1).max(255).optional(),
});
export type CalendarEventRequest = z.input<typeof calendarEventRequestSchema>;

export const calendarEventResponseSchema = z.object({
  id: z.string(),
  web_link: z.string().nullable(),
  start: z.object({ dateTime: z.string(), timeZone: z.string() }),
  end: z.object({ dateTime: z.string(), timeZone: z.string() }),
});

export const scheduleRequestSchema = z
  .strictObject({
    /** A mailbox of the organisation whose calendar answers the query (Graph needs one). */
    requester: z.string().min(1).max(320),
    addresses: z.array(address).min(1).max(100),
    start: z.iso.datetime({ offset: true }),
    end: z.iso.datetime({ offset: true }),
    interval_minutes: z.number().int().min(5).max(1440).default(30),
  })
  .refine((r) => Date.parse(r.end) > Date.parse(r.start), { message: 'end must be after start', path: ['end'] })
  // getSchedule answers at most 62 days at once.
  .refine((r) => Date.parse(r.end) - Date.parse(r.start) <= 62 * 86_400_000, { message: 'at most 62 days', path: ['end'] });
export type ScheduleRequest = z.input<typeof scheduleRequestSchema>;

export const scheduleResponseSchema = z.object({
  schedules: z.array(
    z.object({
      address: z.string(),
      availability_view: z.string(),
      busy: z.array(z.object({ status: z.string(), start: z.string(), end: z.string() })),
      error: z.string().nullable(),
    }),
  ),
});

export const directoryUserResponseSchema = z.object({
  id: z.string(),
  display_name: z.string().nullable(),
  mail: z.string().nullable(),
  user_principal_name: z.string().nullable(),
  job_title: z.string().nullable(),
});

export const groupMembersResponseSchema = z.object({
  group_id: z.string(),
  transitive: z.boolean(),
  members: z.array(directoryUserResponseSchema.extend({ kind: z.enum(['user', 'group', 'other']) })),
});

const userView = (u: DirectoryUser) => ({
  id: u.id,
  display_name: u.displayName ?? null,
  mail: u.mail ?? null,
  user_principal_name: u.userPrincipalName ?? null,
  job_title: u.jobTitle ?? null,
});

/** The integration's Graph client, after checking it belongs to the tenant and is connected. */
async function clientFor(gs: GraphServices, tenant: TenantId, integrationId: IntegrationId) {
  const integration = await requireActiveIntegration(gs, tenant, integrationId);
  return gs.client(integration.externalAccountId);
}

export async function createCalendarEvent(gs: GraphServices, tenant: TenantId, integrationId: IntegrationId, req: z.infer<typeof calendarEventRequestSchema>): Promise<z.infer<typeof calendarEventResponseSchema>> {
  const client = await clientFor(gs, tenant, integrationId);
  try {
    const created = await createEvent(client, {
      mailbox: req.mailbox,
      ...(req.calendar_id ? { calendarId: req.calendar_id } : {}),
      event: {
        subject: req.subject,
        ...(req.body_html ? { bodyHtml: req.body_html } : {}),
        start: req.start,
        end: req.end,
        attendees: req.attendees.map((a) => ({ address: a.address, ...(a.name ? { name: a.name } : {}), type: a.type })),
        ...(req.location ? { location: req.location } : {}),
        showAs: req.show_as,
        ...(req.transaction_id ? { transactionId: req.transaction_id } : {}),
      },
    });
    return { id: created.id, web_link: created.webLink ?? null, start: created.start, end: created.end };
  } catch (err) {
    throw toAppError(err, 'creating the calendar event');
  }
}

export async function freeBusy(gs: GraphServices, tenant: TenantId, integrationId: IntegrationId, req: z.infer<typeof scheduleRequestSchema>): Promise<z.infer<typeof scheduleResponseSchema>> {
  const client = await clientFor(gs, tenant, integrationId);
  try {
    const schedules = await getFreeBusy(client, { requester: req.requester, addresses: req.addresses, start: new Date(req.start), end: new Date(req.end), intervalMinutes: req.interval_minutes });
    return { schedules: schedules.map((s) => ({ address: s.address, availability_view: s.availabilityView, busy: s.busy, error: s.error ?? null })) };
  } catch (err) {
    throw toAppError(err, 'reading free/busy');
  }
}

export async function userByEmail(gs: GraphServices, tenant: TenantId, integrationId: IntegrationId, email: string): Promise<z.infer<typeof directoryUserResponseSchema>> {
  const client = await clientFor(gs, tenant, integrationId);
  let user: DirectoryUser | undefined;
  try {
    user = await findUserByEmail(client, email);
  } catch (err) {
    throw toAppError(err, 'looking up the user');
  }
  if (!user) throw new NotFoundError('No user of the connected organisation has this address.');
  return userView(user);
}

export async function groupMembers(gs: GraphServices, tenant: TenantId, integrationId: IntegrationId, groupId: string, transitive: boolean): Promise<z.infer<typeof groupMembersResponseSchema>> {
  const client = await clientFor(gs, tenant, integrationId);
  try {
    const members = await listGroupMembers(client, groupId, { transitive, usersOnly: false });
    return { group_id: groupId, transitive, members: members.map((m) => ({ ...userView(m), kind: m.kind })) };
  } catch (err) {
    throw toAppError(err, 'listing the group members');
  }
}
