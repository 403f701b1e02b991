import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import { z } from 'zod';
import addFormats from 'ajv-formats';
import { ENGINE_EVENT_CATALOG } from '../../src/connectors/eventCatalog';
import { EngineEventPublisher } from '../../src/platform/events';
import { assertEngineEvent } from '../helpers/engineEvents';
import { ROOT } from '../helpers/runner';

/** The committed asyncapi.json is what `npm run asyncapi` generates from the connectors' event catalogs. */
describe('asyncapi.json', () => {
  const generated = execFileSync(process.execPath, [path.join(ROOT, 'dist', 'runner', 'asyncapi.js'), '--stdout'], { encoding: 'utf8' });
  const doc = JSON.parse(generated) as { asyncapi: string; components: { messages: Record<string, { name: string }> } };

  it('is committed and up to date (run `npm run asyncapi` after changing an event)', () => {
    expect(readFileSync(path.join(ROOT, 'asyncapi.json'), 'utf8')).toBe(generated);
  });

  it('is a valid AsyncAPI 3.0 document by the official schema', () => {
    const specs = require('@asyncapi/specs') as { schemas: Record<string, object> };
    // The bundle carries its own copy of the draft-07 meta-schema; Ajv's built-in one would clash with it.
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, meta: false, validateSchema: false });
    addFormats(ajv);
    const validate = ajv.compile(specs.schemas['3.0.0'] as object);
    const ok = validate(doc);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('has one message per event type of the catalog', () => {
    const types = Object.values(doc.components.messages).map((m) => m.name).sort();
    expect(types).toEqual(ENGINE_EVENT_CATALOG.map((d) => `com.itil-next.connectors.${d.name}.v${d.version}`).sort());
    expect(types).toEqual(expect.arrayContaining(['com.itil-next.connectors.ticket.create_requested.v1', 'com.itil-next.connectors.ticket.comment_added.v1', 'com.itil-next.connectors.sync.completed.v1', 'com.itil-next.connectors.ticket.updated.v1']));
  });

  it('accepts an event the publisher builds and refuses one whose data breaks the schema', () => {
    const publisher = new EngineEventPublisher({ send: async () => undefined } as never, {} as never);
    const def = ENGINE_EVENT_CATALOG.find((d) => d.name === 'sync.completed');
    if (!def) throw new Error('sync.completed missing');
    const data = { integrationId: 'i1', portalId: '123', syncId: 's1', syncType: 'full', status: 'completed', objectTypes: ['tickets'], pages: 3, records: 250, changes: 12 };
    const event = publisher.build({ tenantId: 't1' as never, integrationId: 'i1', name: def.name, connector: 'hubspot', idParts: ['s1'], data, dataSchema: def.schema });
    expect(() => assertEngineEvent(event)).not.toThrow();
    expect(() => assertEngineEvent({ ...event, data: { ...data, pages: 'three' } })).toThrow(/does not match/);
    expect(() => assertEngineEvent({ ...event, type: 'com.itil-next.connectors.sync.started.v1' })).toThrow(/not in asyncapi.json/);
    expect(() => assertEngineEvent({ ...event, tenantid: undefined })).toThrow(/does not match/);
    // Claim check: a dataref instead of data, and the data behind it checked as well.
    const { data: _inline, ...attributes } = event;
    const byRef = { ...attributes, dataref: 'https://acct.blob.core.windows.net/engine-event-data/t1/i1/x.json' };
    expect(() => assertEngineEvent(byRef, data)).not.toThrow();
    expect(() => assertEngineEvent(byRef, { ...data, records: -0.5 })).toThrow(/behind the dataref/);
    expect(() => assertEngineEvent({ ...byRef, data })).toThrow(/does not match/);
  });

  it('with the catalog, the publisher sends only the events the catalog declares, with data its schema accepts', () => {
    const publisher = new EngineEventPublisher({ send: async () => undefined } as never, {} as never, ENGINE_EVENT_CATALOG);
    const def = ENGINE_EVENT_CATALOG.find((d) => d.name === 'sync.completed');
    if (!def) throw new Error('sync.completed missing');
    const data = { integrationId: 'i1', portalId: '123', syncId: 's1', syncType: 'full', status: 'completed', objectTypes: ['tickets'], pages: 3, records: 250, changes: 12 };
    const input = { tenantId: 't1' as never, integrationId: 'i1', name: def.name, connector: 'hubspot', idParts: ['s1'], data, dataSchema: def.schema };
    expect(() => publisher.build(input)).not.toThrow();
    expect(() => publisher.build({ ...input, name: 'sync.started' })).toThrow(/not in the event catalog/);
    expect(() => publisher.build({ ...input, version: 2 })).toThrow(/not in the event catalog/);
    expect(() => publisher.build({ ...input, connector: 'msgraph' })).toThrow(/belongs to connector hubspot/);
    // A looser schema at the call site does not get past the catalog's.
    expect(() => publisher.build({ ...input, data: { ...data, pages: 'three' }, dataSchema: z.unknown() })).toThrow();
  });
});
