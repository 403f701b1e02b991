import { defineEvent, type EventDefinition } from '../../platform/events/catalog';
import { ticketCommentSchema, ticketCreateRequestSchema } from './mail';

/** Every event the Microsoft Graph (mail) connector sends the engine. */
export const GRAPH_EVENTS = {
  ticketCreateRequested: defineEvent({
    name: 'ticket.create_requested',
    version: 1,
    connector: 'msgraph',
    summary: 'A customer email asks for a new ticket',
    description:
      'The first message of a conversation reached a watched support mailbox (auto-replies, bounces and our own mail are skipped). ' +
      "One event per Message-ID, whether it came by notification, delta or both. Later messages of the conversation come as ticket.comment_added with this event's id as ticketRef.",
    schema: ticketCreateRequestSchema,
  }),
  ticketCommentAdded: defineEvent({
    name: 'ticket.comment_added',
    version: 1,
    connector: 'msgraph',
    summary: 'A new email in a conversation that already asked for a ticket',
    description: 'The new text only (quoted history cut off). ticketRef is the id of the conversation\'s ticket.create_requested event; ticketId is the engine\'s ticket id once the engine named it on a reply.',
    schema: ticketCommentSchema,
  }),
};

export const GRAPH_EVENT_CATALOG: EventDefinition[] = [GRAPH_EVENTS.ticketCreateRequested, GRAPH_EVENTS.ticketCommentAdded] as EventDefinition[];
