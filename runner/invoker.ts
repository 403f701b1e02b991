import { randomUUID } from 'node:crypto';
import type { CoreApiState, Registration, RpcTypedData } from './coreApi';

export interface InvocationResult {
  returnValue?: RpcTypedData | null;
  outputData: Array<{ name: string; data: RpcTypedData }>;
  invocationId: string;
  durationMs: number;
}

export type FunctionLog = (entry: { functionName: string; invocationId: string; level: string; category: string; message: string }) => void;

/**
 * Runs one invocation the way the Node worker does: the library's InvocationModel converts RPC input
 * into HttpRequest / InvocationContext, pre- and post-invocation hooks run around the handler, and the
 * result is converted back to RPC output.
 */
export class Invoker {
  constructor(
    private readonly core: CoreApiState,
    private readonly log: FunctionLog,
  ) {}

  async invoke(reg: Registration, input: { triggerBindingName: string; data: RpcTypedData; triggerMetadata?: Record<string, RpcTypedData> }): Promise<InvocationResult> {
    const invocationId = randomUUID();
    const started = Date.now();
    const functionName = reg.metadata.name;
    const coreCtx = {
      invocationId,
      request: {
        invocationId,
        functionId: reg.metadata.functionId ?? functionName,
        inputData: [{ name: input.triggerBindingName, data: input.data }],
        triggerMetadata: input.triggerMetadata ?? {},
      },
      metadata: reg.metadata,
      state: undefined as string | undefined,
      log: (level: string, category: string, message: string) => this.log({ functionName, invocationId, level, category, message }),
    };
    const model = this.core.programmingModel().getInvocationModel(coreCtx);
    const { context, inputs } = await model.getArguments();

    const hookData: Record<string, unknown> = {};
    const pre: Record<string, unknown> = { hookData, invocationContext: context, inputs, functionCallback: reg.handler };
    coreCtx.state = 'preInvocationHooks';
    for (const hook of this.core.hooks.get('preInvocation') ?? []) await hook(pre);
    coreCtx.state = 'invocation';

    let result: unknown;
    let error: unknown;
    try {
      result = await model.invokeFunction(context, pre.inputs as unknown[], pre.functionCallback as Registration['handler']);
    } catch (err) {
      error = err;
    }
    const post: Record<string, unknown> = { hookData, invocationContext: context, inputs: pre.inputs, result, error };
    coreCtx.state = 'postInvocationHooks';
    for (const hook of this.core.hooks.get('postInvocation') ?? []) await hook(post);
    coreCtx.state = undefined;
    if (post.error !== undefined && post.error !== null) throw post.error;

    const response = await model.getResponse(context, post.result);
    return { returnValue: response.returnValue ?? null, outputData: response.outputData ?? [], invocationId, durationMs: Date.now() - started };
  }
}
