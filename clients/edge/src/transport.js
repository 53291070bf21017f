// Where the bindings find kvmux and how they call it: one signed vendor request per call, errors
// turned into `KvmuxApiError` carrying the vendor's code.

import { acs3Headers, acsQuery, tc3Headers, tc3RuntimeHeaders } from "./sign.js";

/** The README's dev credentials (account `dev`), used when neither options nor env name others. */
export const DEV_DEFAULTS = Object.freeze({
  url: "http://127.0.0.1:9090",
  tencent: Object.freeze({ secretId: "AKIDkvmuxdev", secretKey: "kvmuxdevsecret" }),
  aliyun: Object.freeze({ accessKeyId: "LTAIkvmuxdev", accessKeySecret: "kvmuxdevsecret" }),
});

let configured = {};

/**
 * Sets the defaults every binding created afterwards uses: `url` (else env `KVMUX_URL`, else
 * `http://127.0.0.1:9090`), `tencent: { secretId, secretKey }` (env `KVMUX_TENCENT_SECRET_ID`,
 * `KVMUX_TENCENT_SECRET_KEY`) and `aliyun: { accessKeyId, accessKeySecret }` (env
 * `KVMUX_ALIYUN_ACCESS_KEY_ID`, `KVMUX_ALIYUN_ACCESS_KEY_SECRET`). kvmux maps credentials to an
 * account, so the account the data lands in is the one these keys belong to (`dev` for the dev
 * defaults). Returns the effective settings.
 */
export function configure(options = {}) {
  configured = { ...configured, ...options };
  return settings();
}

/** Merges per-binding options over `configure()` over the environment over the dev defaults. */
export function settings(options = {}) {
  const env = process.env;
  const url = String(options.url ?? configured.url ?? env.KVMUX_URL ?? DEV_DEFAULTS.url).replace(/\/+$/, "");
  const tencent = {
    secretId:
      options.tencent?.secretId ?? configured.tencent?.secretId ?? env.KVMUX_TENCENT_SECRET_ID ?? DEV_DEFAULTS.tencent.secretId,
    secretKey:
      options.tencent?.secretKey ?? configured.tencent?.secretKey ?? env.KVMUX_TENCENT_SECRET_KEY ?? DEV_DEFAULTS.tencent.secretKey,
  };
  const aliyun = {
    accessKeyId:
      options.aliyun?.accessKeyId ?? configured.aliyun?.accessKeyId ?? env.KVMUX_ALIYUN_ACCESS_KEY_ID ?? DEV_DEFAULTS.aliyun.accessKeyId,
    accessKeySecret:
      options.aliyun?.accessKeySecret ??
      configured.aliyun?.accessKeySecret ??
      env.KVMUX_ALIYUN_ACCESS_KEY_SECRET ??
      DEV_DEFAULTS.aliyun.accessKeySecret,
  };
  return { url, tencent, aliyun };
}

/** A vendor error returned by kvmux (`code` is the vendor's, e.g. `ResourceUnavailable.NamespaceNotFound`). */
export class KvmuxApiError extends Error {
  constructor(code, message, { status, requestId } = {}) {
    super(`${code}: ${message}`);
    this.name = "KvmuxApiError";
    this.code = code;
    this.status = status;
    this.requestId = requestId;
  }
}

/**
 * A runtime behaviour kvmux cannot carry, thrown instead of silently storing something the vendor
 * SDKs would read differently. Nothing throws it since kvmux's EdgeOne runtime route carries
 * every value the runtime allows (README, "The runtime route"); kept for code that catches it.
 */
export class KvmuxUnsupportedError extends Error {
  constructor(message) {
    super(message);
    this.name = "KvmuxUnsupportedError";
    this.code = "KVMUX_UNSUPPORTED";
  }
}

/** Calls one Tencent TEO action; resolves to the inner `Response` object or throws `KvmuxApiError`. */
export async function callTencent(cfg, action, params) {
  const url = new URL(`${cfg.url}/`);
  const body = JSON.stringify(params);
  const headers = tc3Headers({ ...cfg.tencent, host: url.host, action, body });
  const res = await fetch(url, { method: "POST", headers, body });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new KvmuxApiError("ServerNetworkError", `HTTP ${res.status}: ${text.slice(0, 200)}`, { status: res.status });
  }
  const response = parsed?.Response;
  if (!response) throw new KvmuxApiError("ServerNetworkError", `HTTP ${res.status}: no Response`, { status: res.status });
  if (response.Error) {
    throw new KvmuxApiError(response.Error.Code, response.Error.Message, {
      status: res.status,
      requestId: response.RequestId,
    });
  }
  return response;
}

/**
 * One request to kvmux's EdgeOne runtime route, `PUT|GET|DELETE /_edge/tencent/{zone}/{namespace}/{key}`,
 * which takes and returns raw value bytes under the runtime's limits (up to 25 MiB, binary and
 * empty values) in the very namespace the EdgeKV* actions use. Resolves to the value's bytes (GET),
 * `null` for a missing key (GET, 404 `ResourceNotFound.KeyNotFound`), or the envelope's `Response`
 * (PUT, DELETE); other errors, a missing namespace included, throw `KvmuxApiError` with the
 * Tencent code.
 */
export async function callTencentRuntime(cfg, method, { zoneId, namespace, key }, body = new Uint8Array(0)) {
  const url = new URL(`${cfg.url}/`);
  const path = `/_edge/tencent/${encodeURIComponent(zoneId)}/${encodeURIComponent(namespace)}/${encodeURIComponent(key)}`;
  const headers = tc3RuntimeHeaders({ ...cfg.tencent, host: url.host, method, path, body });
  const res = await fetch(new URL(path, url), {
    method,
    headers: method === "PUT" ? { ...headers, "Content-Type": "application/octet-stream" } : headers,
    body: method === "PUT" ? body : undefined,
  });
  if (method === "GET" && res.status === 200) return new Uint8Array(await res.arrayBuffer());
  const text = await res.text();
  let response;
  try {
    response = JSON.parse(text)?.Response;
  } catch {
    response = undefined;
  }
  if (!response) throw new KvmuxApiError("ServerNetworkError", `HTTP ${res.status}: ${text.slice(0, 200)}`, { status: res.status });
  if (response.Error) {
    if (method === "GET" && response.Error.Code === "ResourceNotFound.KeyNotFound") return null;
    throw new KvmuxApiError(response.Error.Code, response.Error.Message, {
      status: res.status,
      requestId: response.RequestId,
    });
  }
  return response;
}

/**
 * Calls one ESA (2024-09-10) RPC action. `query` goes in the URL, `form` (if any) in an
 * `application/x-www-form-urlencoded` body, as the ESA SDK places them. Resolves to the JSON body.
 */
export async function callEsa(cfg, method, action, query, form) {
  const url = new URL(`${cfg.url}/`);
  const qs = acsQuery(query);
  const body = form ? acsQuery(form) : "";
  const headers = acs3Headers({ ...cfg.aliyun, host: url.host, method, action, query, body });
  const res = await fetch(`${url}${qs ? `?${qs}` : ""}`, {
    method,
    headers,
    body: method === "GET" ? undefined : body,
  });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new KvmuxApiError("ServerNetworkError", `HTTP ${res.status}: ${text.slice(0, 200)}`, { status: res.status });
  }
  if (res.status >= 400 || parsed.Code) {
    throw new KvmuxApiError(parsed.Code ?? `HTTP${res.status}`, parsed.Message ?? text.slice(0, 200), {
      status: res.status,
      requestId: parsed.RequestId,
    });
  }
  return parsed;
}
