import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { compileRoute } from '../../runner/routes';
import { parseNcrontab } from '../../runner/timers';
import { ALL_QUEUES, QUEUE_MESSAGE_ENCODING } from '../../src/storage/names';
import { ROOT } from '../helpers/runner';

interface Binding {
  type: string;
  direction: string;
  [k: string]: unknown;
}
interface Inspection {
  files: string[];
  hostSettings: { queues: { messageEncoding: string; maxDequeueCount: number }; routePrefix: string };
  hooks: Array<{ name: string; count: number }>;
  functions: Array<{ name: string; bindings: Record<string, Binding>; handlerIsFunction: boolean }>;
}

/**
 * Loads the compiled app through the same `@azure/functions-core` hook the Node worker provides (in a
 * child process, as the worker would) and checks every registration is one the host accepts. This is
 * what keeps `func start` and a deployment correct on machines where Core Tools cannot run.
 */
describe('function registrations the host would receive', () => {
  let inspection: Inspection;
  beforeAll(() => {
    const out = execFileSync(process.execPath, [path.join(ROOT, 'dist', 'runner', 'inspect.js'), '--app', ROOT], { encoding: 'utf8' });
    inspection = JSON.parse(out) as Inspection;
  });

  it('package.json main matches index.js and every compiled function file, and nothing else', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { main: string };
    expect(pkg.main).toBe('dist/src/{index.js,functions/*.js}');
    const sources = readdirSync(path.join(ROOT, 'src', 'functions')).filter((f) => f.endsWith('.ts'));
    const expected = ['dist/src/index.js', ...sources.map((f) => `dist/src/functions/${f.replace(/\.ts$/, '.js')}`)].sort();
    expect([...inspection.files].sort()).toEqual(expected);
    expect(sources.length).toBeGreaterThan(0);
  });

  it('registers one function per function file, each with a handler and exactly one trigger', () => {
    const sources = readdirSync(path.join(ROOT, 'src', 'functions')).filter((f) => f.endsWith('.ts'));
    expect(inspection.functions.length).toBe(sources.length);
    const names = inspection.functions.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    for (const fn of inspection.functions) {
      expect(fn.handlerIsFunction).toBe(true);
      expect(fn.name).toMatch(/^[A-Za-z][A-Za-z0-9_-]{0,127}$/);
      const triggers = Object.values(fn.bindings).filter((b) => /Trigger$/.test(b.type));
      expect(triggers).toHaveLength(1);
      expect(['httpTrigger', 'timerTrigger', 'queueTrigger']).toContain(triggers[0]?.type);
    }
  });

  it('HTTP triggers have a valid route, known methods, an auth level and an http $return', () => {
    const routes = new Map<string, string>();
    for (const fn of inspection.functions) {
      const t = Object.values(fn.bindings).find((b) => b.type === 'httpTrigger');
      if (!t) continue;
      expect(typeof t.route).toBe('string');
      expect(() => compileRoute('api', t.route as string)).not.toThrow();
      const methods = t.methods as string[];
      expect(methods.length).toBeGreaterThan(0);
      for (const m of methods) expect(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']).toContain(m);
      expect(['anonymous', 'function', 'admin']).toContain(t.authLevel);
      expect(fn.bindings.$return).toMatchObject({ type: 'http', direction: 'out' });
      for (const m of methods) {
        const key = `${m} ${(t.route as string).replace(/\{[^}]+\}/g, '{}')}`;
        expect(routes.has(key) ? `${key} registered by ${routes.get(key)} and ${fn.name}` : '').toBe('');
        routes.set(key, fn.name);
      }
    }
  });

  it('management routes require a function key; only health, webhooks, callbacks and links are anonymous', () => {
    for (const fn of inspection.functions) {
      const t = Object.values(fn.bindings).find((b) => b.type === 'httpTrigger');
      if (!t || t.authLevel !== 'anonymous') continue;
      expect(t.route as string).toMatch(/^(health|openapi\.json|asyncapi\.json|webhooks\/|[a-z]+\/oauth\/(callback|start)|teams\/snooze)/);
    }
  });

  it('timer schedules parse as NCRONTAB and queue triggers name declared queues on AzureWebJobsStorage', () => {
    for (const fn of inspection.functions) {
      for (const b of Object.values(fn.bindings)) {
        if (b.type === 'timerTrigger') expect(() => parseNcrontab(b.schedule as string)).not.toThrow();
        if (b.type === 'queueTrigger' || b.type === 'queue') {
          expect(ALL_QUEUES).toContain(b.queueName);
          expect(b.connection).toBe('AzureWebJobsStorage');
        }
      }
    }
  });

  it('host.json decodes queue messages the way our code encodes them', () => {
    expect(inspection.hostSettings.queues.messageEncoding).toBe(QUEUE_MESSAGE_ENCODING);
    const host = JSON.parse(readFileSync(path.join(ROOT, 'host.json'), 'utf8'));
    expect(host.extensionBundle).toEqual({ id: 'Microsoft.Azure.Functions.ExtensionBundle', version: '[4.*, 5.0.0)' });
    for (const k of ['maxDequeueCount', 'visibilityTimeout', 'batchSize', 'messageEncoding']) expect(host.extensions.queues).toHaveProperty(k);
  });

  it('the app validates configuration when the host starts it', () => {
    expect(inspection.hooks).toContainEqual({ name: 'appStart', count: 1 });
  });
});
