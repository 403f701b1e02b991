import type { Client } from '@microsoft/microsoft-graph-client';
import { z } from 'zod';
import { pathSegment } from './messages';

const dateTimeTimeZone = z.object({ dateTime: z.string().min(1), timeZone: z.string().min(1) });

/** An event to create on a user's calendar (or one of its calendars, e.g. a shared team calendar). */
export const newEventSchema = z.object({
  subject: z.string().min(1).max(255),
  bodyHtml: z.string().max(64 * 1024).optional(),
  start: dateTimeTimeZone,
  end: dateTimeTimeZone,
  attendees: z.array(z.object({ address: z.string().email(), name: z.string().optional(), type: z.enum(['required', 'optional', 'resource']).default('required') })).default([]),
  location: z.string().max(255).optional(),
  showAs: z.enum(['free', 'tentative', 'busy', 'oof', 'workingElsewhere']).default('busy'),
  /** Ticket reference, kept on the event so a person sees where it came from. */
  transactionId: z.string().max(255).optional(),
});
export type NewEvent = z.input<typeof newEventSchema>;

const createdEventSchema = z.object({ id: z.string(), webLink: z.string().nullish(), start: dateTimeTimeZone, end: dateTimeTimeZone }).loose();
export type CreatedEvent = z.infer<typeof createdEventSchema>;

/** App-only (`Calendars.ReadWrite`): `POST /users/{id}/events`, or `/users/{id}/calendars/{calendarId}/events`. */
export async function createEvent(client: Client, input: { mailbox: string; calendarId?: string; event: NewEvent }): Promise<CreatedEvent> {
  const e = newEventSchema.parse(input.event);
  const path = input.calendarId
    ? `/users/${pathSegment(input.mailbox)}/calendars/${pathSegment(input.calendarId)}/events`
    : `/users/${pathSegment(input.mailbox)}/events`;
  const created: unknown = await client.api(path).post({
    subject: e.subject,
    ...(e.bodyHtml ? { body: { contentType: 'HTML', content: e.bodyHtml } } : {}),
    start: e.start,
    end: e.end,
    attendees: e.attendees.map((a) => ({ emailAddress: { address: a.address, ...(a.name ? { name: a.name } : {}) }, type: a.type })),
    ...(e.location ? { location: { displayName: e.location } } : {}),
    showAs: e.showAs,
    // Graph de-duplicates creates that carry the same transactionId, which makes a retry safe.
    ...(e.transactionId ? { transactionId: e.transactionId } : {}),
  });
  return createdEventSchema.parse(created);
}

const scheduleSchema = z.object({
  value: z.array(
    z
      .object({
        scheduleId: z.string(),
        availabilityView: z.string().nullish(),
        scheduleItems: z.array(z.object({ status: z.string(), start: dateTimeTimeZone, end: dateTimeTimeZone, subject: z.string().nullish() }).loose()).nullish(),
        error: z.object({ message: z.string().nullish(), responseCode: z.string().nullish() }).loose().nullish(),
      })
      .loose(),
  ),
});

export interface FreeBusy {
  address: string;
  /** One digit per interval: 0 free, 1 tentative, 2 busy, 3 out of office, 4 working elsewhere. */
  availabilityView: string;
  busy: Array<{ status: string; start: string; end: string }>;
  error?: string;
}

/**
 * Free/busy for up to 100 addresses, app-only (`Calendars.Read`): `getSchedule`. The delegated-only
 * `findMeetingTimes` is not available to a daemon. Times are UTC (`Prefer: outlook.timezone="UTC"`).
 */
export async function getFreeBusy(client: Client, input: { requester: string; addresses: string[]; start: Date; end: Date; intervalMinutes?: number }): Promise<FreeBusy[]> {
  if (input.addresses.length === 0 || input.addresses.length > 100) throw new RangeError('getSchedule takes 1 to 100 addresses');
  const interval = input.intervalMinutes ?? 30;
  if (interval < 5 || interval > 1440) throw new RangeError('availabilityViewInterval must be 5 to 1440 minutes');
  const iso = (d: Date) => d.toISOString().replace(/Z$/, '');
  const raw: unknown = await client
    .api(`/users/${pathSegment(input.requester)}/calendar/getSchedule`)
    .header('Prefer', 'outlook.timezone="UTC"')
    .post({ schedules: input.addresses, startTime: { dateTime: iso(input.start), timeZone: 'UTC' }, endTime: { dateTime: iso(input.end), timeZone: 'UTC' }, availabilityViewInterval: interval });
  return scheduleSchema.parse(raw).value.map((s) => ({
    address: s.scheduleId,
    availabilityView: s.availabilityView ?? '',
    busy: (s.scheduleItems ?? []).map((i) => ({ status: i.status, start: i.start.dateTime, end: i.end.dateTime })),
    ...(s.error?.message ? { error: s.error.message } : {}),
  }));
}
