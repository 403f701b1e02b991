/**
 * The part of the Adaptive Card 1.5 schema (adaptivecards.io/schemas/adaptive-card.json) our cards use,
 * typed after it so that a misspelt property is a compile error rather than a card Teams drops. Property
 * names and enums are the schema's; only what we emit is declared.
 */

export type Spacing = 'default' | 'none' | 'small' | 'medium' | 'large' | 'extraLarge' | 'padding';
export type Colors = 'default' | 'dark' | 'light' | 'accent' | 'good' | 'warning' | 'attention';
export type FontSize = 'default' | 'small' | 'medium' | 'large' | 'extraLarge';
export type FontWeight = 'default' | 'lighter' | 'bolder';
export type ContainerStyle = 'default' | 'emphasis' | 'good' | 'attention' | 'warning' | 'accent';

interface ElementBase {
  /** A unique identifier; we put the notification id here so a received card can be traced. */
  id?: string;
  spacing?: Spacing;
  separator?: boolean;
}

export interface TextBlock extends ElementBase {
  type: 'TextBlock';
  text: string;
  wrap?: boolean;
  size?: FontSize;
  weight?: FontWeight;
  color?: Colors;
  isSubtle?: boolean;
  maxLines?: number;
}

export interface Fact {
  title: string;
  value: string;
}

export interface FactSet extends ElementBase {
  type: 'FactSet';
  facts: Fact[];
}

export interface Container extends ElementBase {
  type: 'Container';
  items: CardElement[];
  style?: ContainerStyle;
  bleed?: boolean;
}

export type CardElement = TextBlock | FactSet | Container;

/** The only action that works in webhook-posted cards without a bot behind them (besides ShowCard/Toggle). */
export interface OpenUrlAction {
  type: 'Action.OpenUrl';
  title: string;
  url: string;
  style?: 'default' | 'positive' | 'destructive';
}

export type CardAction = OpenUrlAction;

/** Teams' extension on the card root; not in the schema (which forbids extra root properties). */
export interface MsTeamsExtension {
  width?: 'Full';
  entities?: Mention[];
}

export interface Mention {
  type: 'mention';
  /** Must equal an `<at>…</at>` run inside a TextBlock or FactSet of the card. */
  text: string;
  /** Incoming webhooks accept an Entra object id or a UPN. */
  mentioned: { id: string; name: string };
}

export interface AdaptiveCard {
  $schema: 'http://adaptivecards.io/schemas/adaptive-card.json';
  type: 'AdaptiveCard';
  version: '1.5';
  fallbackText?: string;
  body: CardElement[];
  actions?: CardAction[];
  msteams?: MsTeamsExtension;
}

/** The body Teams incoming webhooks and the Workflows "webhook request received" trigger take. */
export interface MessageEnvelope {
  type: 'message';
  attachments: Array<{
    contentType: 'application/vnd.microsoft.card.adaptive';
    contentUrl: null;
    content: AdaptiveCard;
  }>;
}
