import { AppError } from '../../platform/errors';
import type { WebhookKind } from './schemas';

/**
 * Which URLs we accept as a channel's webhook. Posting a ticket's facts to an arbitrary URL would make
 * this app a data exfiltration and SSRF tool, so only the hosts Teams hands out are allowed:
 * - legacy Office 365 connector ("incoming webhook"): `https://<tenant>.webhook.office.com/webhookb2/…`;
 * - Teams Workflows / Power Automate "When a Teams webhook request is received":
 *   `https://<region>.logic.azure.com/workflows/…` and `https://<env>.environment.api.powerplatform.com/…`
 *   (graph-teams.md §6); `*.powerautomate.com` is accepted for the same service's newer host names.
 * Loopback (`http(s)://127.0.0.1|localhost|[::1]`) is accepted only when the caller says so, which the
 * app does only with the explicit, default-off `TEAMS_ALLOW_LOOPBACK_WEBHOOKS=true` (refused in Azure):
 * that is how local runs and tests reach a fake Teams.
 */
const HOSTS: ReadonlyArray<{ suffix: string; kind: WebhookKind }> = [
  { suffix: '.webhook.office.com', kind: 'incoming-webhook' },
  { suffix: '.logic.azure.com', kind: 'workflows' },
  { suffix: '.powerplatform.com', kind: 'workflows' },
  { suffix: '.powerautomate.com', kind: 'workflows' },
];

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export class InvalidWebhookUrlError extends AppError {
  constructor(detail: string) {
    super({ status: 400, code: 'invalid-webhook-url', title: 'Invalid webhook URL', detail });
  }
}

export interface WebhookTarget {
  url: string;
  kind: WebhookKind;
  loopback: boolean;
}

/**
 * Checks a webhook URL and says what kind it is. Error messages never repeat the URL: it carries the
 * signature that makes it a credential.
 */
export function parseWebhookUrl(raw: string, opts: { allowLoopback: boolean; kind?: WebhookKind | undefined }): WebhookTarget {
  if (!URL.canParse(raw)) throw new InvalidWebhookUrlError('The webhook URL is not a valid URL.');
  const url = new URL(raw);
  if (url.username || url.password) throw new InvalidWebhookUrlError('The webhook URL must not contain credentials before the host.');
  const host = url.hostname.toLowerCase();
  if (LOOPBACK.has(host)) {
    if (!opts.allowLoopback) throw new InvalidWebhookUrlError('Loopback webhook URLs are not accepted (TEAMS_ALLOW_LOOPBACK_WEBHOOKS is off).');
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidWebhookUrlError('The webhook URL must be http(s).');
    return { url: url.toString(), kind: opts.kind ?? 'workflows', loopback: true };
  }
  if (url.protocol !== 'https:') throw new InvalidWebhookUrlError('The webhook URL must use https.');
  if (url.port !== '' && url.port !== '443') throw new InvalidWebhookUrlError('The webhook URL must use the standard https port.');
  const match = HOSTS.find((h) => host.endsWith(h.suffix) && host.length > h.suffix.length);
  if (!match) {
    throw new InvalidWebhookUrlError(
      'The webhook URL must be a Teams Workflows (logic.azure.com, powerplatform.com, powerautomate.com) or incoming webhook (webhook.office.com) URL.',
    );
  }
  if (opts.kind && opts.kind !== match.kind) throw new InvalidWebhookUrlError(`The webhook URL is a ${match.kind} URL, not ${opts.kind}.`);
  return { url: url.toString(), kind: match.kind, loopback: false };
}
