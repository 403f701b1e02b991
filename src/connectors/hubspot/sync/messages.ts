import { z } from 'zod';
import { integrationIdSchema, tenantIdSchema } from '../../../storage';

/** Object types the sync keeps in the Records table, in the order a job visits them. */
export const SYNC_OBJECT_TYPES = ['tickets', 'contacts', 'companies'] as const;
export type SyncObjectType = (typeof SYNC_OBJECT_TYPES)[number];
export const syncObjectTypeSchema = z.enum(SYNC_OBJECT_TYPES);

export const SYNC_TYPES = ['full', 'incremental'] as const;
export type SyncType = (typeof SYNC_TYPES)[number];

/**
 * A job on the `hubspot-sync` queue. The checkpoint lives in SyncState, not in the message: a message
 * only says which sync (`syncId`) to carry on, so a redelivered or duplicated message can never move a
 * cursor backwards. `continuation` marks a job a previous invocation re-queued before its time budget ran
 * out; `invocation` lets a worker tell a genuine next step from a stale duplicate.
 */
export const syncMessageSchema = z.object({
  tenantId: tenantIdSchema,
  integrationId: integrationIdSchema,
  syncId: z.string().regex(/^[A-Za-z0-9-]{8,64}$/),
  syncType: z.enum(SYNC_TYPES),
  objectTypes: z.array(syncObjectTypeSchema).min(1).max(SYNC_OBJECT_TYPES.length).optional(),
  continuation: z
    .object({
      invocation: z.number().int().min(2).max(100_000),
    })
    .optional(),
  /** Who asked: the timer, the API, the OAuth callback, or a re-queue. For the sync history only. */
  trigger: z.enum(['timer', 'api', 'connect', 'continuation']).optional(),
});
export type SyncMessage = z.infer<typeof syncMessageSchema>;
/** What a producer writes (ids as plain strings are validated on the way in). */
export type SyncMessageInput = z.input<typeof syncMessageSchema>;
