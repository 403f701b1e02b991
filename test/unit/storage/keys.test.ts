import { InvalidKeyError } from '../../../src/platform/errors';
import {
  escapeKeyPart,
  integrationId,
  integrationIdSchema,
  partitionKey,
  rowKey,
  tenantId,
  tenantIdSchema,
  tenantPartitionRange,
  unescapeKeyPart,
} from '../../../src/storage/keys';

// What Table Storage forbids in PartitionKey/RowKey (azure.md §5): / \ # ? and U+0000–U+001F, U+007F–U+009F.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_IN_KEYS = /[/\\#?\u0000-\u001f\u007f-\u009f]/;

const GOOD_IDS = ['t1', 'T', '0', 'contoso', 'tenant-1', 'a.b_c-d', '3fa85f64-5717-4562-b3fc-2c963f66afa6', 'x'.repeat(128)];

const BAD_IDS: Array<[label: string, raw: string]> = [
  ['empty', ''],
  ['too long (129)', 'x'.repeat(129)],
  ['colon', 'a:b'],
  ['slash', 'a/b'],
  ['hash', 'a#b'],
  ['question mark', 'a?b'],
  ['backslash', 'a\\b'],
  ['NUL', 'a\u0000b'],
  ['tab', 'a\tb'],
  ['newline inside', 'a\nb'],
  ['trailing newline', 'abc\n'],
  ['DEL', 'a\u007fb'],
  ['C1 control', 'a\u0085b'],
  ['leading dash', '-abc'],
  ['leading dot', '.abc'],
  ['leading underscore', '_abc'],
  ['space', 'a b'],
  ['semicolon', 'a;b'],
  ['percent', 'a%b'],
  ['quote', "a'b"],
  ['non-ascii', 'tenänt'],
];

describe('tenantId / integrationId', () => {
  it.each(GOOD_IDS)('accept %j', (raw) => {
    expect(tenantId(raw)).toBe(raw);
    expect(integrationId(raw)).toBe(raw);
    expect(tenantIdSchema.parse(raw)).toBe(raw);
    expect(integrationIdSchema.parse(raw)).toBe(raw);
  });

  it.each(BAD_IDS)('reject %s with InvalidKeyError', (_label, raw) => {
    expect(() => tenantId(raw)).toThrow(InvalidKeyError);
    expect(() => integrationId(raw)).toThrow(InvalidKeyError);
    expect(tenantIdSchema.safeParse(raw).success).toBe(false);
    expect(integrationIdSchema.safeParse(raw).success).toBe(false);
  });

  it('InvalidKeyError is a 400 user error that does not echo the raw id', () => {
    const raw = 'secret/looking#id';
    let caught: unknown;
    try {
      tenantId(raw);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidKeyError);
    const err = caught as InvalidKeyError;
    expect(err.status).toBe(400);
    expect(err.expose).toBe(true);
    expect(err.message).not.toContain(raw);
  });
});

describe('escapeKeyPart / unescapeKeyPart', () => {
  const NASTY: string[] = [
    // Graph ids are base64 with '/', '+', '=' and sometimes '-'/'_'
    'AAMkAGI2TG93AAA=/+AAA==',
    'AQMkADAwATM0MDAAMS1iNTcwLWI2NTEtMDACLTAwCgBGAAAD/Zy+k9Xg==',
    '19:meeting_NjQ1ZTk2YTAtYjI1Zi00@thread.v2',
    'a:b:c',
    '100%',
    '%25',
    '%2F',
    '%zz%',
    '%%%%',
    'a\\b#c?d/e',
    'path/to/thing?query=1#frag',
    'tab\there\nnewline\r\u0000nul\u001fus',
    'del\u007f c1\u0080\u0085\u009f end',
    'unicode: ünïcødé — ✓ 日本語 😀',
    "quotes ' and \" and spaces  ",
    '/',
    '\\',
    '#',
    '?',
    ':',
    '%',
    'plain-id_123.x',
  ];

  it.each(NASTY)('round-trips %j and the escaped form is a legal key', (raw) => {
    const escaped = escapeKeyPart(raw);
    expect(unescapeKeyPart(escaped)).toBe(raw);
    expect(escaped).not.toMatch(FORBIDDEN_IN_KEYS);
    // ':' separates composite keys, so an escaped part must not contain one either
    expect(escaped).not.toContain(':');
    expect(rowKey(raw)).toBe(escaped);
  });

  it('maps distinct inputs to distinct keys (injective on the nasty set)', () => {
    const escaped = NASTY.map((n) => escapeKeyPart(n));
    expect(new Set(escaped).size).toBe(NASTY.length);
  });

  it('leaves plain ids unchanged, so range scans over them keep their order', () => {
    for (const id of ['abc', 'ABC-123', 'a.b_c', '0001', 'contact-42']) expect(escapeKeyPart(id)).toBe(id);
  });

  it('escapes with uppercase two-digit hex', () => {
    expect(escapeKeyPart('a/b')).toBe('a%2Fb');
    expect(escapeKeyPart('%')).toBe('%25');
    expect(escapeKeyPart('\u0001')).toBe('%01');
    expect(escapeKeyPart('a:b')).toBe('a%3Ab');
  });

  it('rejects an empty part', () => {
    expect(() => escapeKeyPart('')).toThrow(InvalidKeyError);
  });

  it('accepts a part of exactly 1024 characters and rejects 1025, also when escaping is what makes it too long', () => {
    expect(escapeKeyPart('a'.repeat(1024))).toHaveLength(1024);
    expect(() => escapeKeyPart('a'.repeat(1025))).toThrow(InvalidKeyError);
    // 342 slashes become 1026 characters once escaped
    expect(() => escapeKeyPart('/'.repeat(342))).toThrow(InvalidKeyError);
    expect(escapeKeyPart('/'.repeat(341))).toHaveLength(1023);
  });
});

describe('partitionKey builders', () => {
  const t = tenantId('t1');
  const i = integrationId('i1');

  it('put the tenant first', () => {
    expect(partitionKey.tenant(t)).toBe('t1');
    expect(partitionKey.integration(t, i)).toBe('t1:i1');
    expect(partitionKey.records(t, i, 'contacts')).toBe('t1:i1:contacts');
    for (const pk of [partitionKey.integration(t, i), partitionKey.records(t, i, 'contacts')]) {
      expect(pk.split(':')[0]).toBe('t1');
    }
  });

  it('escape object types and sources so they cannot forge another segment', () => {
    const pk = partitionKey.records(t, i, 'a:b/c');
    expect(pk).toBe('t1:i1:a%3Ab%2Fc');
    expect(pk.split(':')).toHaveLength(3);
    expect(pk).not.toMatch(FORBIDDEN_IN_KEYS);
    // 'source' cannot smuggle a tenant in front of the real one
    const processed = partitionKey.processed('hubspot:t2', t);
    expect(processed).toBe('hubspot%3At2:t1');
    expect(processed.split(':')).toEqual(['hubspot%3At2', 't1']);
    expect(partitionKey.processed('hubspot', tenantId('t2'))).not.toBe(processed);
  });

  it('escape account index parts', () => {
    expect(partitionKey.accountIndex('hubspot', '12345')).toBe('hubspot:12345');
    const pk = partitionKey.accountIndex('msgraph', 'a/b:c#d');
    expect(pk).toBe('msgraph:a%2Fb%3Ac%23d');
    expect(pk).not.toMatch(FORBIDDEN_IN_KEYS);
  });

  it('reject over-long keys', () => {
    // the object type alone fits, but the composite key is over 1024
    const objectType = 'o'.repeat(1024 - 'x'.length);
    expect(() => partitionKey.records(t, i, objectType)).toThrow(InvalidKeyError);
    const longT = tenantId('t'.repeat(128));
    const longI = integrationId('i'.repeat(128));
    const fits = 'o'.repeat(1024 - 128 - 1 - 128 - 1);
    expect(partitionKey.records(longT, longI, fits)).toHaveLength(1024);
    expect(() => partitionKey.records(longT, longI, fits + 'o')).toThrow(InvalidKeyError);
    expect(() => partitionKey.accountIndex('hubspot', 'x'.repeat(1020))).toThrow(InvalidKeyError);
    expect(() => partitionKey.processed('s'.repeat(1000), longT)).toThrow(InvalidKeyError);
  });
});

describe('tenantPartitionRange', () => {
  const inRange = (bounds: { from: string; to: string }, pk: string): boolean => pk >= bounds.from && pk < bounds.to;

  it('is [t:, t;)', () => {
    expect(tenantPartitionRange(tenantId('t'))).toEqual({ from: 't:', to: 't;' });
  });

  it('includes every integration-level partition of the tenant', () => {
    const r = tenantPartitionRange(tenantId('t'));
    expect(inRange(r, 't:x')).toBe(true);
    expect(inRange(r, 't:')).toBe(true);
    expect(inRange(r, partitionKey.integration(tenantId('t'), integrationId('zzzz')))).toBe(true);
    expect(inRange(r, partitionKey.records(tenantId('t'), integrationId('i'), '\uffff'))).toBe(true);
    expect(inRange(r, partitionKey.integration(tenantId('t'), integrationId('0')))).toBe(true);
  });

  it('excludes other tenants, including ones that share the prefix', () => {
    const r = tenantPartitionRange(tenantId('t'));
    for (const pk of ['t2:x', 'tt:x', 't0:x', 't-x:y', 't.x:y', 't_x:y', 'T:x', 's:x', 'u:x', 't']) {
      expect(inRange(r, pk)).toBe(false);
    }
    // exhaustively: any tenant id 't' + c (c a legal id character) is outside the range of 't'
    const idChars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-';
    for (const c of idChars) {
      const other = tenantId(`t${c}`);
      expect(inRange(r, partitionKey.integration(other, integrationId('i')))).toBe(false);
      expect(inRange(tenantPartitionRange(other), partitionKey.integration(tenantId('t'), integrationId('i')))).toBe(false);
    }
  });
});
