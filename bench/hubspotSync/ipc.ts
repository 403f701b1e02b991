import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { z } from 'zod';

/**
 * A small request/response protocol over Node's IPC channel: the benchmark runs the fake HubSpot and
 * each contender in processes of their own, so one's memory never shows in another's RSS.
 */
export const requestSchema = z.object({ id: z.string(), op: z.string(), args: z.unknown() });
export const responseSchema = z.object({ id: z.string(), ok: z.boolean(), value: z.unknown().optional(), error: z.string().optional() });
export type Request = z.infer<typeof requestSchema>;
export type Response = z.infer<typeof responseSchema>;

export class Remote {
  private readonly pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(private readonly child: ChildProcess) {
    child.on('message', (raw: unknown) => {
      const res = responseSchema.safeParse(raw);
      if (!res.success) return;
      const p = this.pending.get(res.data.id);
      if (!p) return;
      this.pending.delete(res.data.id);
      if (res.data.ok) p.resolve(res.data.value);
      else p.reject(new Error(res.data.error ?? 'remote failure'));
    });
    child.once('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`child exited with ${code}`));
      this.pending.clear();
    });
  }

  call<T>(op: string, args: unknown, schema: z.ZodType<T>): Promise<T> {
    const id = randomUUID();
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: (v) => resolve(schema.parse(v)), reject });
      this.child.send({ id, op, args } satisfies Request);
    });
  }
}

/** Serves requests from the parent in a child process. */
export function serve(handlers: Record<string, (args: unknown) => Promise<unknown>>): void {
  process.on('message', (raw: unknown) => {
    const req = requestSchema.safeParse(raw);
    if (!req.success) return;
    const { id, op, args } = req.data;
    const handler = handlers[op];
    const reply = (r: Response) => process.send?.(r);
    if (!handler) {
      reply({ id, ok: false, error: `unknown op ${op}` });
      return;
    }
    handler(args).then(
      (value) => reply({ id, ok: true, value }),
      (err: unknown) => reply({ id, ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
    );
  });
}
