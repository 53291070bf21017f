// EdgeOne Pages KV, the runtime binding (`my_kv.get(key)`) of Pages Edge Functions, backed by a
// running kvmux: get/put/delete through kvmux's runtime route (raw bytes, the runtime's limits),
// list through EdgeKVList, both in the namespace the TEO SDK sees.
// Semantics follow the EdgeOne Pages KV storage documentation (see the README for the sources).

import { callTencent, callTencentRuntime, KvmuxApiError, settings } from "./transport.js";
import { getType, shape, utf8Length, valueBytes } from "./values.js";

/** The runtime's key rule: letters, digits and underscores, at most 512 bytes. */
export const EDGEONE_KEY_PATTERN = /^[A-Za-z0-9_]+$/;
export const EDGEONE_MAX_KEY_BYTES = 512;
/** The runtime's value limit, 25 MB (taken as MiB). */
export const EDGEONE_MAX_VALUE_BYTES = 25 * 1024 * 1024;
/** The most keys one `list` call returns on the runtime. */
export const EDGEONE_MAX_LIST_LIMIT = 256;
/**
 * What the `EdgeKVPut` action carries (tencent.md §3: a non-empty string of at most 1 MB). The
 * binding does not write through it (kvmux's runtime route takes the runtime's 25 MB, binary and
 * empty values); kept for code that compares the two.
 */
export const EDGEKVPUT_MAX_VALUE_BYTES = 1024 * 1024;

const NAMESPACE_NOT_FOUND = "ResourceUnavailable.NamespaceNotFound";

function checkKey(key, method) {
  if (typeof key !== "string") {
    throw new TypeError(`${method}: key must be a string`);
  }
  if (!EDGEONE_KEY_PATTERN.test(key) || utf8Length(key) > EDGEONE_MAX_KEY_BYTES) {
    throw new Error(
      `${method}: invalid key ${JSON.stringify(key.slice(0, 64))}: a KV key may contain only letters, ` +
        `digits and underscores and be at most ${EDGEONE_MAX_KEY_BYTES} bytes`,
    );
  }
}

/**
 * An EdgeOne Pages KV namespace binding. `namespace` is the KV namespace (created in `zoneId`,
 * default `default`, the first time the binding finds it missing, as a bound namespace always
 * exists on the runtime). Other options: `url`, `tencent: { secretId, secretKey }`.
 */
export function createEdgeOneKV(options = {}) {
  const { namespace, zoneId = "default" } = options;
  if (typeof namespace !== "string" || namespace.length === 0) {
    throw new TypeError("createEdgeOneKV: options.namespace must be a non-empty string");
  }
  const cfg = settings(options);

  /** Creates the namespace in its zone, as on the runtime a bound namespace always exists. */
  async function ensureNamespace() {
    try {
      await callTencent(cfg, "CreateEdgeKVNamespace", { ZoneId: zoneId, Namespace: namespace });
    } catch (e) {
      // A concurrent first touch may have created it; the caller's retry tells.
      if (!(e instanceof KvmuxApiError) || !e.code.startsWith("InvalidParameter")) throw e;
    }
  }

  /** Runs one EdgeKV action (list), creating the namespace and retrying once if the zone does not have it yet. */
  async function call(action, params) {
    const full = { ZoneId: zoneId, Namespace: namespace, ...params };
    try {
      return await callTencent(cfg, action, full);
    } catch (e) {
      if (!(e instanceof KvmuxApiError) || e.code !== NAMESPACE_NOT_FOUND) throw e;
    }
    await ensureNamespace();
    return callTencent(cfg, action, full);
  }

  return Object.freeze({
    /** `type`: "text" (default), "json", "arrayBuffer" or "stream", or `{ type }`; null when missing. */
    async get(key, type) {
      checkKey(key, "get");
      const t = getType(type, "text", "get");
      let bytes;
      try {
        bytes = await callTencentRuntime(cfg, "GET", { zoneId, namespace, key });
      } catch (e) {
        if (!(e instanceof KvmuxApiError) || e.code !== NAMESPACE_NOT_FOUND) throw e;
        await ensureNamespace();
        return null;
      }
      return bytes === null ? null : shape(bytes, t);
    },

    /**
     * `value`: string, ArrayBuffer, ArrayBufferView or ReadableStream, at most 25 MB; binary and
     * empty values are stored as they are. The namespace is created on the first put.
     */
    async put(key, value) {
      checkKey(key, "put");
      const tooLarge = (n) =>
        new Error(`put: value too large: ${n} bytes, the KV value limit is ${EDGEONE_MAX_VALUE_BYTES} bytes (25 MB)`);
      const bytes = await valueBytes(value, {
        accepts: ["string", "ArrayBuffer", "ArrayBufferView", "ReadableStream"],
        limit: EDGEONE_MAX_VALUE_BYTES,
        onTooLarge: tooLarge,
        method: "put",
      });
      if (bytes.byteLength > EDGEONE_MAX_VALUE_BYTES) throw tooLarge(bytes.byteLength);
      await callTencentRuntime(cfg, "PUT", { zoneId, namespace, key }, bytes);
    },

    /** Deletes `key`; deleting a missing key is not an error. */
    async delete(key) {
      checkKey(key, "delete");
      await callTencentRuntime(cfg, "DELETE", { zoneId, namespace, key });
    },

    /**
     * One page of key names in ascending order: `{ keys: [{ key }], complete, cursor }`. `limit`
     * defaults to, and is capped at, 256; pass the returned `cursor` to continue.
     */
    async list(opts = {}) {
      const { prefix, limit, cursor } = opts ?? {};
      if (prefix !== undefined && prefix !== null && typeof prefix !== "string") {
        throw new TypeError("list: prefix must be a string");
      }
      if (cursor !== undefined && cursor !== null && typeof cursor !== "string") {
        throw new TypeError("list: cursor must be a string");
      }
      let n = EDGEONE_MAX_LIST_LIMIT;
      if (limit !== undefined && limit !== null) {
        if (!Number.isInteger(limit) || limit < 1) throw new TypeError("list: limit must be a positive integer");
        n = Math.min(limit, EDGEONE_MAX_LIST_LIMIT);
      }
      const params = { Limit: n };
      // EdgeKVList refuses an empty Prefix or Cursor; on the runtime both mean "none".
      if (prefix) params.Prefix = prefix;
      if (cursor) params.Cursor = cursor;
      const res = await call("EdgeKVList", params);
      const next = res.Cursor ?? "";
      return {
        keys: (res.Keys ?? []).map((k) => ({ key: k, name: k })),
        complete: next === "",
        cursor: next,
      };
    },
  });
}

/**
 * Sets one global per entry, as the runtime exposes bound namespaces: `{ my_kv: "ns" }` or
 * `{ my_kv: { namespace: "ns", zoneId } }`. `options` (url, credentials, zoneId) apply to all.
 * Returns the bindings by variable name.
 */
export function installEdgeOneKV(bindings, options = {}) {
  const out = {};
  for (const [variable, spec] of Object.entries(bindings ?? {})) {
    const own = typeof spec === "string" ? { namespace: spec } : spec;
    out[variable] = createEdgeOneKV({ ...options, ...own });
    globalThis[variable] = out[variable];
  }
  return out;
}
