import type { Client } from '@microsoft/microsoft-graph-client';
import { z } from 'zod';
import { isNotFound } from './errors';
import { odataString, pathSegment } from './messages';
import { collectPages } from './paging';

export const directoryUserSchema = z
  .object({
    id: z.string(),
    displayName: z.string().nullish(),
    mail: z.string().nullish(),
    userPrincipalName: z.string().nullish(),
    jobTitle: z.string().nullish(),
  })
  .loose();
export type DirectoryUser = z.infer<typeof directoryUserSchema>;

const USER_SELECT = 'id,displayName,mail,userPrincipalName,jobTitle';
/** Directory pages go up to 999 (1000 is refused). */
const DIRECTORY_PAGE = 999;

/** A user by id or UPN (`GET /users/{id|upn}`), or undefined when there is none. */
export async function getUser(client: Client, idOrUpn: string): Promise<DirectoryUser | undefined> {
  try {
    return directoryUserSchema.parse(await client.api(`/users/${pathSegment(idOrUpn)}`).select(USER_SELECT).get());
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** A user by mail address (`$filter=mail eq …`), falling back to the UPN for accounts without `mail`. */
export async function findUserByEmail(client: Client, email: string): Promise<DirectoryUser | undefined> {
  const address = email.trim();
  for (const property of ['mail', 'userPrincipalName']) {
    const first = client.api('/users').filter(`${property} eq ${odataString(address)}`).select(USER_SELECT).top(5);
    const { items } = await collectPages(client, first, directoryUserSchema, { maxPages: 1 });
    if (items[0]) return items[0];
  }
  return undefined;
}

export interface GroupMember extends DirectoryUser {
  kind: 'user' | 'group' | 'other';
}

const memberSchema = directoryUserSchema.extend({ '@odata.type': z.string().optional() });

/**
 * Members of a group, paged to the end. `transitive` (default) walks nested groups server-side
 * (`/transitiveMembers`, cost 5 vs 3 in Graph's directory throttling); the result is directory
 * objects, so each says whether it is a user.
 */
export async function listGroupMembers(client: Client, groupId: string, opts: { transitive?: boolean; usersOnly?: boolean; maxPages?: number } = {}): Promise<GroupMember[]> {
  const relation = opts.transitive === false ? 'members' : 'transitiveMembers';
  const first = client.api(`/groups/${pathSegment(groupId)}/${relation}`).select(USER_SELECT).top(DIRECTORY_PAGE);
  const { items, nextLink } = await collectPages(client, first, memberSchema, { maxPages: opts.maxPages ?? 50 });
  if (nextLink) throw new Error(`group has more members than ${opts.maxPages ?? 50} pages; refusing a partial list`);
  const members = items.map((m): GroupMember => {
    const type = (m['@odata.type'] ?? '').toLowerCase();
    const kind = type.endsWith('.user') ? 'user' : type.endsWith('.group') ? 'group' : 'other';
    const { '@odata.type': _t, ...rest } = m;
    return { ...rest, kind };
  });
  return opts.usersOnly === false ? members : members.filter((m) => m.kind === 'user');
}
