import { AppError } from '../errors';

/** A request body longer than its route accepts: answered 413 (problem JSON) by `httpHandler`. */
export class PayloadTooLargeError extends AppError {
  readonly maxBytes: number;
  constructor(maxBytes: number) {
    super({ status: 413, code: 'payload-too-large', title: 'Payload too large', detail: `The body must be at most ${maxBytes} bytes.` });
    this.maxBytes = maxBytes;
  }
}

/**
 * What the reader needs of a request: `HttpRequest` of `@azure/functions` (whose `body` is a web
 * ReadableStream, over the host's buffer or, with HTTP streams, over the connection) and a fetch `Request`.
 */
export interface BodySource {
  readonly headers: { get(name: string): string | null };
  readonly body: ByteStream | null;
}

/** The part of a web ReadableStream the reader uses (structural: Node's and the DOM's types both fit). */
interface ByteStream {
  getReader(): { read(): Promise<{ done: boolean; value?: unknown }>; cancel(reason?: unknown): Promise<void>; releaseLock(): void };
  cancel(reason?: unknown): Promise<void>;
}

/**
 * The request body, read until `maxBytes` and not one chunk further. A `Content-Length` above the limit
 * is refused before reading; otherwise the header is not trusted: bytes are counted as they arrive, and
 * the first chunk that passes the limit cancels the stream and throws `PayloadTooLargeError`, so at most
 * `maxBytes` plus one chunk is ever held. Every route that reads a body reads it through this.
 */
export async function readBodyBounded(request: BodySource, maxBytes: number): Promise<Buffer> {
  const stream = request.body;
  const declared = request.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > maxBytes) {
    await stream?.cancel().catch(() => undefined);
    throw new PayloadTooLargeError(maxBytes);
  }
  if (!stream) return Buffer.alloc(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!(value instanceof Uint8Array)) throw new TypeError('The request body stream yielded something other than bytes.');
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new PayloadTooLargeError(maxBytes);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return Buffer.concat(chunks, size);
}
