// Turning the value types the runtimes accept into bytes, and stored bytes into the types `get`
// returns. Shared by both bindings; each binding applies its own runtime's limits.

const encoder = new TextEncoder();

/**
 * Reads a ReadableStream to bytes, giving up (with `onTooLarge()`'s error) as soon as more than
 * `limit` bytes have arrived, so an oversized stream is never buffered whole.
 */
async function readStream(stream, limit, onTooLarge) {
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const chunk = typeof value === "string" ? encoder.encode(value) : toBytes(value);
    if (!chunk) {
      await reader.cancel();
      throw new TypeError("the stream yielded a chunk that is neither a string nor bytes");
    }
    total += chunk.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw onTooLarge(total);
    }
    chunks.push(chunk);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** ArrayBuffer or ArrayBufferView as a Uint8Array over the same bytes; null for anything else. */
function toBytes(value) {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return null;
}

/**
 * The bytes a `put` stores. `accepts` lists which of string, ArrayBuffer, ArrayBufferView,
 * ReadableStream and Response this runtime documents; anything else is a TypeError naming them.
 */
export async function valueBytes(value, { accepts, limit, onTooLarge, method }) {
  if (typeof value === "string" && accepts.includes("string")) return encoder.encode(value);
  if (value instanceof ArrayBuffer && accepts.includes("ArrayBuffer")) return toBytes(value);
  if (ArrayBuffer.isView(value) && accepts.includes("ArrayBufferView")) return toBytes(value);
  if (value instanceof ReadableStream && accepts.includes("ReadableStream")) {
    return readStream(value, limit, onTooLarge);
  }
  if (value instanceof Response && accepts.includes("Response")) {
    if (!value.body) return new Uint8Array(0);
    return readStream(value.body, limit, onTooLarge);
  }
  throw new TypeError(`${method}: the value must be one of ${accepts.join(", ")}`);
}

/** The `type` argument as a string: `type` may be the string itself or `{ type }`. */
export function getType(arg, fallback, method) {
  const type = arg === undefined || arg === null ? fallback : typeof arg === "string" ? arg : arg.type ?? fallback;
  if (!["text", "json", "arrayBuffer", "stream"].includes(type)) {
    throw new TypeError(
      `${method}: type must be "text", "json", "arrayBuffer" or "stream", got ${JSON.stringify(type)}`,
    );
  }
  return type;
}

/** Stored bytes in the shape `type` asks for (a fresh ArrayBuffer / a one-chunk byte stream). */
export function shape(bytes, type) {
  switch (type) {
    case "text":
      return new TextDecoder().decode(bytes);
    case "json":
      return JSON.parse(new TextDecoder().decode(bytes));
    case "arrayBuffer":
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    case "stream":
      return new ReadableStream({
        type: "bytes",
        start(controller) {
          if (bytes.byteLength > 0) controller.enqueue(new Uint8Array(bytes));
          controller.close();
        },
      });
    default:
      throw new TypeError(`unknown type ${type}`);
  }
}

/** Length in UTF-8 bytes. */
export const utf8Length = (s) => encoder.encode(s).byteLength;
