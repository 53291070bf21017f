// ESA / DCDN Edge Routine `EdgeKV`, backed by a running kvmux through the ESA (2024-09-10) KV
// actions, so the data is the namespace the ESA SDK's GetKv/PutKv see. Semantics follow the
// "Edge KV API" page of the ESA documentation (see the README for the sources and for where
// `esa-cli dev` differs).

import { callEsa, KvmuxApiError, settings } from "./transport.js";
import { getType, shape, valueBytes } from "./values.js";

/** The documented put limit, 1.8 MB (decimal, as Alibaba's 2,000,000-byte PutKv limit is). */
export const ESA_MAX_VALUE_BYTES = 1_800_000;

const NAMESPACE_NOT_FOUND = "InvalidNameSpace.NotFound";
const KEY_NOT_FOUND = "InvalidKey.NotFound";

function checkKey(key, method) {
  if (typeof key !== "string") throw new TypeError(`EdgeKV.${method}: key must be a string`);
  if (key.length === 0) throw new TypeError(`EdgeKV.${method}: key must not be empty`);
}

export class EdgeKV {
  #cfg;
  #namespace;

  /**
   * `new EdgeKV({ namespace })`. Extra (non-runtime) options: `url`,
   * `aliyun: { accessKeyId, accessKeySecret }`. The namespace is created in kvmux the first time
   * it is found missing, as a namespace named in a routine already exists on the runtime.
   */
  constructor(options) {
    if (!options || typeof options.namespace !== "string" || options.namespace.length === 0) {
      throw new TypeError("The argument to `EdgeKV` must be an object with a `namespace` field");
    }
    this.#namespace = options.namespace;
    this.#cfg = settings(options);
  }

  get namespace() {
    return this.#namespace;
  }

  async #call(method, action, query, form) {
    const q = { Namespace: this.#namespace, ...query };
    try {
      return await callEsa(this.#cfg, method, action, q, form);
    } catch (e) {
      if (!(e instanceof KvmuxApiError) || e.code !== NAMESPACE_NOT_FOUND) throw e;
    }
    try {
      await callEsa(this.#cfg, "POST", "CreateKvNamespace", {}, { Namespace: this.#namespace });
    } catch (e) {
      if (!(e instanceof KvmuxApiError) || e.code !== "InvalidNameSpace.Duplicate") throw e;
    }
    return callEsa(this.#cfg, method, action, q, form);
  }

  /** `{ type }`: "stream" (the documented default), "text", "json", "arrayBuffer"; undefined when missing. */
  async get(key, options) {
    checkKey(key, "get");
    const type = getType(options, "stream", "EdgeKV.get");
    let res;
    try {
      res = await this.#call("GET", "GetKv", { Key: key, Base64: "true" });
    } catch (e) {
      if (e instanceof KvmuxApiError && e.code === KEY_NOT_FOUND) return undefined;
      throw e;
    }
    return shape(new Uint8Array(Buffer.from(res.Value ?? "", "base64")), type);
  }

  /** `value`: string, ReadableStream, ArrayBuffer or Response (its body), at most 1.8 MB. */
  async put(key, value) {
    if (arguments.length < 2) {
      throw new TypeError(`EdgeKV.put: 2 arguments required, but only ${arguments.length} present`);
    }
    checkKey(key, "put");
    const tooLarge = (n) =>
      new Error(`EdgeKV.put: value too large: ${n} bytes, the limit is ${ESA_MAX_VALUE_BYTES} bytes (1.8 MB)`);
    const bytes = await valueBytes(value, {
      accepts: ["string", "ReadableStream", "ArrayBuffer", "Response"],
      limit: ESA_MAX_VALUE_BYTES,
      onTooLarge: tooLarge,
      method: "EdgeKV.put",
    });
    if (bytes.byteLength > ESA_MAX_VALUE_BYTES) throw tooLarge(bytes.byteLength);
    // Base64=true stores the decoded bytes, so binary values arrive intact (aliyun.md §1.3).
    await this.#call("POST", "PutKv", { Key: key, Base64: "true" }, { Value: Buffer.from(bytes).toString("base64") });
  }

  /** Resolves to true when the key was deleted, false when there was no such key. */
  async delete(key) {
    checkKey(key, "delete");
    try {
      await this.#call("GET", "DeleteKv", { Key: key });
      return true;
    } catch (e) {
      if (e instanceof KvmuxApiError && e.code === KEY_NOT_FOUND) return false;
      throw e;
    }
  }
}

/** Sets `globalThis.EdgeKV` as the runtime provides it; `options` (url, credentials) apply to every instance. */
export function installEdgeKV(options = {}) {
  const Bound = class extends EdgeKV {
    constructor(opts) {
      super(opts && typeof opts === "object" ? { ...options, ...opts } : opts);
    }
  };
  Object.defineProperty(Bound, "name", { value: "EdgeKV" });
  globalThis.EdgeKV = Bound;
  return Bound;
}
