import { z } from 'zod';

/** The parts of a Graph `message` this connector reads; anything else Graph sends is ignored. */

export const graphRecipientSchema = z.object({
  emailAddress: z.object({ name: z.string().nullish(), address: z.string().nullish() }).loose(),
});
export type GraphRecipient = z.infer<typeof graphRecipientSchema>;

export const graphAttachmentSchema = z
  .object({
    id: z.string(),
    name: z.string().nullish(),
    contentType: z.string().nullish(),
    size: z.number().nullish(),
    isInline: z.boolean().nullish(),
  })
  .loose();

export const graphMessageSchema = z
  .object({
    id: z.string().min(1),
    conversationId: z.string().min(1),
    internetMessageId: z.string().nullish(),
    subject: z.string().nullish(),
    body: z.object({ contentType: z.string(), content: z.string().nullish() }).nullish(),
    bodyPreview: z.string().nullish(),
    from: graphRecipientSchema.nullish(),
    sender: graphRecipientSchema.nullish(),
    toRecipients: z.array(graphRecipientSchema).nullish(),
    ccRecipients: z.array(graphRecipientSchema).nullish(),
    replyTo: z.array(graphRecipientSchema).nullish(),
    receivedDateTime: z.string().nullish(),
    sentDateTime: z.string().nullish(),
    importance: z.string().nullish(),
    hasAttachments: z.boolean().nullish(),
    isDraft: z.boolean().nullish(),
    internetMessageHeaders: z.array(z.object({ name: z.string(), value: z.string().nullish() })).nullish(),
    attachments: z.array(graphAttachmentSchema).nullish(),
  })
  .loose();
export type GraphMessage = z.infer<typeof graphMessageSchema>;

/** What we select when reading one message: the headers come only when named. */
export const MESSAGE_SELECT = [
  'id',
  'conversationId',
  'internetMessageId',
  'subject',
  'body',
  'from',
  'sender',
  'toRecipients',
  'ccRecipients',
  'replyTo',
  'receivedDateTime',
  'sentDateTime',
  'importance',
  'hasAttachments',
  'isDraft',
  'internetMessageHeaders',
].join(',');

export const THREAD_SELECT = ['id', 'conversationId', 'internetMessageId', 'subject', 'from', 'sender', 'receivedDateTime', 'sentDateTime', 'isDraft'].join(',');

export function addressOf(r: GraphRecipient | null | undefined): string | undefined {
  const a = r?.emailAddress.address?.trim();
  return a ? a.toLowerCase() : undefined;
}

export function headerValue(message: GraphMessage, name: string): string | undefined {
  const lower = name.toLowerCase();
  return message.internetMessageHeaders?.find((h) => h.name.toLowerCase() === lower)?.value ?? undefined;
}

/** Graph's `'` quoting inside `$filter`, then URL-encoding: the SDK passes query values through as-is. */
export function odataString(value: string): string {
  return `'${encodeURIComponent(value.replace(/'/g, "''"))}'`;
}

export function pathSegment(value: string): string {
  return encodeURIComponent(value);
}
