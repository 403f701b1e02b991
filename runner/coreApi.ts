import Module, { createRequire } from 'node:module';

/**
 * A stand-in for `@azure/functions-core`, the module the real Node worker injects. `@azure/functions`
 * requires it on first registration; answering that require lets us see exactly the metadata and
 * handlers the Functions host would receive, and invoke them through the library's own
 * `ProgrammingModel` (the same RPC conversions the worker runs).
 */

export interface RpcBinding {
  type: string;
  direction: 'in' | 'out' | 'inout';
  [key: string]: unknown;
}

export interface FunctionMetadata {
  name: string;
  functionId?: string;
  bindings: Record<string, RpcBinding>;
  retryOptions?: Record<string, unknown>;
}

export type RpcTypedData =
  | { string: string }
  | { json: string }
  | { bytes: Uint8Array }
  | { http: RpcHttpData }
  | Record<string, never>;

export interface RpcHttpData {
  method?: string;
  url?: string;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  params?: Record<string, string>;
  body?: RpcTypedData;
  statusCode?: string;
  cookies?: Array<{ name: string; value: string; [k: string]: unknown }>;
}

export interface CoreInvocationContext {
  invocationId: string;
  request: {
    invocationId: string;
    functionId: string;
    inputData: Array<{ name: string; data: RpcTypedData }>;
    triggerMetadata: Record<string, RpcTypedData>;
  };
  metadata: FunctionMetadata;
  state?: string;
  log(level: string, category: string, message: string): void;
}

export interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], handler: Handler): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<{ returnValue?: RpcTypedData | null; outputData?: Array<{ name: string; data: RpcTypedData }> }>;
}

export interface ProgrammingModel {
  name: string;
  version: string;
  getInvocationModel(ctx: CoreInvocationContext): InvocationModel;
  getCapabilities(caps: Record<string, string>): Promise<Record<string, string>>;
}

export type Handler = (...args: unknown[]) => unknown;
export type HookCallback = (context: Record<string, unknown>) => unknown;

export interface Registration {
  metadata: FunctionMetadata;
  handler: Handler;
}

export interface CoreApiState {
  registrations: Registration[];
  hooks: Map<string, HookCallback[]>;
  programmingModel(): ProgrammingModel;
  logSink: (level: string, category: string, message: string) => void;
}

const CORE_MODULE = '@azure/functions-core';

interface ModuleInternals {
  _resolveFilename(request: string, parent: unknown, isMain: boolean, options?: unknown): string;
}

/** Installs the shim for this process. Must run before anything requires `@azure/functions`. */
export function installCoreApi(hostVersion = '4.1040.0'): CoreApiState {
  let model: ProgrammingModel | undefined;
  const state: CoreApiState = {
    registrations: [],
    hooks: new Map(),
    programmingModel() {
      if (!model) throw new Error('No programming model was set: the app registered no functions.');
      return model;
    },
    logSink: (level, category, message) => console.log(`[${level}] [${category}] ${message}`),
  };

  const api = {
    version: '3.10.1',
    hostVersion,
    setProgrammingModel(m: ProgrammingModel) {
      model = m;
    },
    getProgrammingModel() {
      return model;
    },
    registerFunction(metadata: FunctionMetadata, handler: Handler) {
      if (state.registrations.some((r) => r.metadata.name === metadata.name)) {
        throw new Error(`A function named "${metadata.name}" is already registered.`);
      }
      state.registrations.push({ metadata, handler });
      return { dispose() {} };
    },
    registerHook(hookName: string, callback: HookCallback) {
      const list = state.hooks.get(hookName) ?? [];
      list.push(callback);
      state.hooks.set(hookName, list);
      return {
        dispose() {
          const l = state.hooks.get(hookName) ?? [];
          state.hooks.set(hookName, l.filter((c) => c !== callback));
        },
      };
    },
    log(level: string, category: string, message: string) {
      state.logSink(level, category, message);
    },
  };

  const internals = Module as unknown as ModuleInternals;
  const original = internals._resolveFilename;
  internals._resolveFilename = function (request, parent, isMain, options) {
    if (request === CORE_MODULE) return CORE_MODULE;
    return original.call(this, request, parent, isMain, options);
  };
  const req = createRequire(__filename);
  const mod = new Module(CORE_MODULE);
  mod.exports = api;
  mod.loaded = true;
  req.cache[CORE_MODULE] = mod;
  return state;
}
