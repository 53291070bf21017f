// Request signing for the two vendor APIs the bindings speak to kvmux with.
//
// The bindings send real vendor requests (Tencent TC3-HMAC-SHA256 for the EdgeKV* actions, Alibaba
// ACS3-HMAC-SHA256 for the ESA KV actions) rather than a kvmux-private protocol, so a binding works
// against any kvmux that knows its credentials, and what it writes is by construction what the
// vendor SDKs read. Both algorithms are specified in the kvmux repository's vendor specs
// (tencent.md §6, aliyun.md §3.2); node:crypto is all they need.

import { createHash, createHmac, randomBytes } from "node:crypto";

const sha256Hex = (data) => createHash("sha256").update(data).digest("hex");
const hmac = (key, data) => createHmac("sha256", key).update(data).digest();

/**
 * Signs a Tencent Cloud API 3.0 request (TC3-HMAC-SHA256, POST, JSON body) and returns its headers.
 * The host is signed verbatim (port included), as the Python and Go SDKs do; the scope's service is
 * `teo`. By default `x-tc-action` is signed too (TC3 allows extra signed headers): the SDKs sign
 * only content-type and host, so two actions with the same body in the same second would share a
 * signature, and kvmux refuses a signature replayed for another action (a binding's `get` then
 * `delete` of one key is exactly that). `signAction: false` gives the SDKs' form, for the vectors.
 */
export function tc3Headers({ secretId, secretKey, host, action, body, timestamp, service = "teo", signAction = true }) {
  const ts = timestamp ?? Math.floor(Date.now() / 1000);
  const date = new Date(ts * 1000).toISOString().slice(0, 10);
  const contentType = "application/json";
  const signedHeaders = signAction ? "content-type;host;x-tc-action" : "content-type;host";
  const canonicalHeaders =
    `content-type:${contentType}\nhost:${host}\n` + (signAction ? `x-tc-action:${action}\n` : "");
  const canonicalRequest = ["POST", "/", "", canonicalHeaders, signedHeaders, sha256Hex(body)].join("\n");
  const scope = `${date}/${service}/tc3_request`;
  const stringToSign = `TC3-HMAC-SHA256\n${ts}\n${scope}\n${sha256Hex(canonicalRequest)}`;
  const kDate = hmac(`TC3${secretKey}`, date);
  const kService = hmac(kDate, service);
  const kSigning = hmac(kService, "tc3_request");
  const signature = createHmac("sha256", kSigning).update(stringToSign).digest("hex");
  return {
    "Content-Type": contentType,
    "X-TC-Action": action,
    "X-TC-Version": "2022-09-01",
    "X-TC-Timestamp": String(ts),
    Authorization:
      `TC3-HMAC-SHA256 Credential=${secretId}/${scope}, ` +
      `SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}

/**
 * Signs a request to kvmux's EdgeOne runtime route (`/_edge/tencent/{zone}/{namespace}/{key}`)
 * with TC3-HMAC-SHA256 and returns its headers. The canonical request holds the method, the path
 * (which names zone, namespace and key), the signed `host` and the SHA-256 of the raw body, so the
 * signature covers everything that decides what runs; kvmux refuses the route without them.
 */
export function tc3RuntimeHeaders({ secretId, secretKey, host, method, path, body, timestamp, service = "teo" }) {
  const ts = timestamp ?? Math.floor(Date.now() / 1000);
  const date = new Date(ts * 1000).toISOString().slice(0, 10);
  const canonicalRequest = [method, path, "", `host:${host}\n`, "host", sha256Hex(body)].join("\n");
  const scope = `${date}/${service}/tc3_request`;
  const stringToSign = `TC3-HMAC-SHA256\n${ts}\n${scope}\n${sha256Hex(canonicalRequest)}`;
  const kDate = hmac(`TC3${secretKey}`, date);
  const kService = hmac(kDate, service);
  const kSigning = hmac(kService, "tc3_request");
  const signature = createHmac("sha256", kSigning).update(stringToSign).digest("hex");
  return {
    "X-TC-Timestamp": String(ts),
    Authorization:
      `TC3-HMAC-SHA256 Credential=${secretId}/${scope}, SignedHeaders=host, Signature=${signature}`,
  };
}

/** RFC 3986 percent-encoding as ACS3 canonicalises it (unreserved: A-Z a-z 0-9 - _ . ~). */
export function acsPercent(value) {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The query string in the form ACS3 signs it: keys sorted, keys and values RFC 3986-encoded. */
export function acsQuery(query) {
  return Object.keys(query)
    .sort()
    .map((k) => `${acsPercent(k)}=${acsPercent(String(query[k]))}`)
    .join("&");
}

/**
 * Signs an Alibaba Cloud ACS3-HMAC-SHA256 (V3) RPC request and returns its headers. Every header
 * it sets is signed (as tea-openapi does), so the server's canonical form is fully determined by
 * the `SignedHeaders` list it receives. `date` and `nonce` are injectable for vector tests.
 */
export function acs3Headers({
  accessKeyId,
  accessKeySecret,
  host,
  method,
  action,
  version = "2024-09-10",
  query = {},
  body = "",
  date,
  nonce,
  extraHeaders = {},
}) {
  const headers = {
    ...Object.fromEntries(Object.entries(extraHeaders).map(([k, v]) => [k.toLowerCase(), v])),
    host,
    "x-acs-action": action,
    "x-acs-version": version,
    "x-acs-date": date ?? new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    "x-acs-signature-nonce": nonce ?? randomBytes(16).toString("hex"),
    "x-acs-content-sha256": sha256Hex(body),
  };
  // `extraHeaders` (signed as well) lets the vector tests reproduce SDK captures that sign more.
  if (body.length > 0) headers["content-type"] = "application/x-www-form-urlencoded";
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names.map((n) => `${n}:${String(headers[n]).trim()}\n`).join("");
  const signedHeaders = names.join(";");
  const canonicalRequest = [
    method,
    "/",
    acsQuery(query),
    canonicalHeaders,
    signedHeaders,
    headers["x-acs-content-sha256"],
  ].join("\n");
  const stringToSign = `ACS3-HMAC-SHA256\n${sha256Hex(canonicalRequest)}`;
  const signature = createHmac("sha256", accessKeySecret).update(stringToSign).digest("hex");
  const out = { ...headers };
  delete out.host; // fetch sets Host itself, from the URL, to the same value
  out.Authorization =
    `ACS3-HMAC-SHA256 Credential=${accessKeyId},SignedHeaders=${signedHeaders},Signature=${signature}`;
  return out;
}
