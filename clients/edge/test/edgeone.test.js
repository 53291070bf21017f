// The EdgeOne Pages KV binding against a real kvmux, cross-checked with the pinned TEO Node SDK.
import test, { after, before } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  configure,
  createEdgeOneKV,
  installEdgeOneKV,
  KvmuxApiError,
  EDGEONE_MAX_VALUE_BYTES,
  EDGEKVPUT_MAX_VALUE_BYTES,
} from "../src/index.js";
import { startKvmux, teoClient } from "./kvmux.js";

let kvmux;
let sdk;
const ns = (p) => `${p}-${randomBytes(4).toString("hex")}`;

before(async () => {
  kvmux = await startKvmux();
  configure({ url: kvmux.url });
  sdk = teoClient(kvmux.endpoint);
});
after(async () => kvmux?.stop());

const streamOf = (...chunks) =>
  new ReadableStream({
    start(c) {
      for (const x of chunks) c.enqueue(x);
      c.close();
    },
  });

async function readAll(stream) {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

test("put, get and delete round-trip; a missing key reads as null; the namespace is created on first touch", async () => {
  const namespace = ns("basic");
  const kv = createEdgeOneKV({ namespace });
  assert.equal(await kv.get("nothing_here"), null);
  const described = await sdk.DescribeEdgeKVNamespaces({ ZoneId: "default" });
  assert.ok(described.KVNamespaces.some((n) => n.Namespace === namespace), "created in zone default");

  assert.equal(await kv.put("greeting", "hello 世界"), undefined);
  assert.equal(await kv.get("greeting"), "hello 世界");
  await kv.put("greeting", "overwritten");
  assert.equal(await kv.get("greeting"), "overwritten");
  assert.equal(await kv.delete("greeting"), undefined);
  assert.equal(await kv.get("greeting"), null);
  await kv.delete("greeting"); // deleting a missing key is not an error
});

test("get returns every documented type, as a string or as { type }", async () => {
  const kv = createEdgeOneKV({ namespace: ns("types") });
  await kv.put("doc", JSON.stringify({ a: 1, b: ["x", "ü"] }));
  assert.equal(await kv.get("doc"), '{"a":1,"b":["x","ü"]}');
  assert.equal(await kv.get("doc", "text"), '{"a":1,"b":["x","ü"]}');
  assert.deepEqual(await kv.get("doc", "json"), { a: 1, b: ["x", "ü"] });
  assert.deepEqual(await kv.get("doc", { type: "json" }), { a: 1, b: ["x", "ü"] });
  const buf = await kv.get("doc", "arrayBuffer");
  assert.ok(buf instanceof ArrayBuffer);
  assert.equal(new TextDecoder().decode(buf), '{"a":1,"b":["x","ü"]}');
  const stream = await kv.get("doc", { type: "stream" });
  assert.ok(stream instanceof ReadableStream);
  assert.equal(new TextDecoder().decode(await readAll(stream)), '{"a":1,"b":["x","ü"]}');
  for (const type of ["json", "arrayBuffer", "stream"]) assert.equal(await kv.get("absent", type), null);

  await kv.put("notjson", "{oops");
  await assert.rejects(kv.get("notjson", "json"), SyntaxError);
  await assert.rejects(kv.get("doc", "blob"), { name: "TypeError", message: /type must be/ });
  await assert.rejects(kv.get("doc", { type: "xml" }), TypeError);
});

test("put accepts string, ArrayBuffer, ArrayBufferView and ReadableStream, and nothing else", async () => {
  const kv = createEdgeOneKV({ namespace: ns("values") });
  const bytes = new TextEncoder().encode("bytes ✓");
  await kv.put("ab", bytes.buffer.slice(0));
  await kv.put("u8", bytes);
  await kv.put("dv", new DataView(bytes.buffer, 0, 5));
  await kv.put("rs", streamOf(new TextEncoder().encode("str"), new TextEncoder().encode("eam ✓")));
  assert.equal(await kv.get("ab"), "bytes ✓");
  assert.equal(await kv.get("u8"), "bytes ✓");
  assert.equal(await kv.get("dv"), "bytes");
  assert.equal(await kv.get("rs"), "stream ✓");
  for (const bad of [42, { a: 1 }, null, undefined, new Blob(["x"])]) {
    await assert.rejects(kv.put("k", bad), { name: "TypeError", message: /must be one of/ });
  }
});

test("the runtime's key rule: [A-Za-z0-9_]+, at most 512 bytes, on every method", async () => {
  const kv = createEdgeOneKV({ namespace: ns("keys") });
  const longest = "k".repeat(512);
  await kv.put(longest, "ok");
  assert.equal(await kv.get(longest), "ok");
  await kv.put("Under_score_09", "ok");
  for (const bad of ["", "a-b", "a b", "a/b", "ключ", "a.b", "k".repeat(513)]) {
    await assert.rejects(kv.put(bad, "v"), { message: /invalid key/ }, `put ${bad.slice(0, 10)}`);
    await assert.rejects(kv.get(bad), { message: /invalid key/ });
    await assert.rejects(kv.delete(bad), { message: /invalid key/ });
  }
  await assert.rejects(kv.get(7), TypeError);
  await assert.rejects(kv.put(undefined, "v"), TypeError);
});

test("the runtime's 25 MB value limit is enforced before anything is sent; a stream is cut off early", async () => {
  const kv = createEdgeOneKV({ namespace: ns("limit") });
  await assert.rejects(kv.put("big", "x".repeat(EDGEONE_MAX_VALUE_BYTES + 1)), {
    message: /value too large: 26214401 bytes/,
  });
  let pulled = 0;
  const endless = new ReadableStream({
    pull(c) {
      pulled += 1;
      c.enqueue(new Uint8Array(1024 * 1024));
    },
  });
  await assert.rejects(kv.put("big", endless), { message: /value too large/ });
  assert.ok(pulled <= 27, `read ${pulled} MiB of an endless stream`);
  assert.equal(await kv.get("big"), null);
});

test("values EdgeKVPut cannot carry round-trip: 25 MB, binary and empty, shared with the TEO SDK", async () => {
  const namespace = ns("runtime");
  const kv = createEdgeOneKV({ namespace });
  // The runtime's largest value, 25 MB (26,214,400 bytes), of every byte value.
  const largest = new Uint8Array(EDGEONE_MAX_VALUE_BYTES);
  for (let i = 0; i < largest.length; i += 1) largest[i] = i % 251;
  await kv.put("largest", largest);
  const back = new Uint8Array(await kv.get("largest", "arrayBuffer"));
  assert.equal(back.byteLength, EDGEONE_MAX_VALUE_BYTES);
  assert.ok(Buffer.from(back).equals(Buffer.from(largest)), "25 MB byte for byte");

  const over1MiB = "y".repeat(EDGEKVPUT_MAX_VALUE_BYTES + 1);
  await kv.put("over", over1MiB);
  assert.equal(await kv.get("over"), over1MiB);

  const binary = new Uint8Array([0xff, 0xfe, 0x00, 0x61]);
  await kv.put("bin", binary);
  assert.deepEqual(new Uint8Array(await kv.get("bin", "arrayBuffer")), binary);
  assert.deepEqual(await readAll(await kv.get("bin", "stream")), binary);
  // `text` decodes as the runtime's TextDecoder does: U+FFFD for each invalid sequence.
  assert.equal(await kv.get("bin"), "\ufffd\ufffd\u0000a");

  await kv.put("empty", "");
  assert.equal(await kv.get("empty"), "", "an empty value is a value, not a missing key");
  assert.deepEqual(new Uint8Array(await kv.get("empty", "arrayBuffer")), new Uint8Array(0));
  assert.deepEqual(await readAll(await kv.get("empty", "stream")), new Uint8Array(0));

  // The TEO SDK reads the same keys: over 1 MiB in full, non-UTF-8 lossily (as `text` would),
  // the empty value as "" (which EdgeKVGet also answers for a missing key).
  const got = await sdk.EdgeKVGet({ ZoneId: "default", Namespace: namespace, Keys: ["over", "bin", "empty"] });
  assert.deepEqual(
    got.Data.map((d) => [d.Key, d.Value.length]),
    [["over", EDGEKVPUT_MAX_VALUE_BYTES + 1], ["bin", 4], ["empty", 0]],
  );
  assert.equal(got.Data[1].Value, "\ufffd\ufffd\u0000a");
  const listed = await sdk.EdgeKVList({ ZoneId: "default", Namespace: namespace, Limit: 10 });
  assert.deepEqual(listed.Keys, ["bin", "empty", "largest", "over"]);

  // A value the SDK wrote is read byte for byte; a delete through the binding is seen by the SDK.
  await sdk.EdgeKVPut({ ZoneId: "default", Namespace: namespace, Key: "from_sdk", Value: "ünïcode ✓" });
  assert.deepEqual(
    Buffer.from(await kv.get("from_sdk", "arrayBuffer")),
    Buffer.from("ünïcode ✓", "utf8"),
  );
  await kv.delete("largest");
  const afterDelete = await sdk.EdgeKVList({ ZoneId: "default", Namespace: namespace, Limit: 10 });
  assert.deepEqual(afterDelete.Keys, ["bin", "empty", "from_sdk", "over"]);
});

test("the runtime route is signed: wrong keys are refused with Tencent's code and store nothing", async () => {
  const namespace = ns("signed");
  const bad = createEdgeOneKV({ namespace, tencent: { secretKey: "wrong" } });
  await assert.rejects(bad.put("k", new Uint8Array([1, 2, 3])), (e) => {
    assert.ok(e instanceof KvmuxApiError);
    assert.equal(e.code, "AuthFailure.SignatureFailure");
    assert.equal(e.status, 401);
    return true;
  });
  await assert.rejects(bad.delete("k"), { code: "AuthFailure.SignatureFailure" });
  assert.equal(await createEdgeOneKV({ namespace }).get("k"), null);
});

test("list pages through 2,500 keys in ascending order, 256 at most per call, with prefix and cursor", async () => {
  const kv = createEdgeOneKV({ namespace: ns("list") });
  const keys = Array.from({ length: 2500 }, (_, i) => `item_${String(i).padStart(4, "0")}`);
  for (let i = 0; i < keys.length; i += 25) {
    await Promise.all(keys.slice(i, i + 25).map((k) => kv.put(k, k)));
  }
  await kv.put("other_1", "x");

  const seen = [];
  let cursor;
  let pages = 0;
  for (;;) {
    const page = await kv.list({ prefix: "item_", cursor });
    pages += 1;
    assert.ok(page.keys.length <= 256);
    for (const entry of page.keys) assert.deepEqual(entry, { key: entry.key, name: entry.key });
    seen.push(...page.keys.map((k) => k.key));
    if (page.complete) {
      assert.equal(page.cursor, "");
      break;
    }
    assert.equal(page.keys.length, 256);
    cursor = page.cursor;
  }
  assert.equal(pages, 10);
  assert.deepEqual(seen, keys);

  const small = await kv.list({ prefix: "item_1", limit: 7 });
  assert.deepEqual(small.keys.map((k) => k.key), keys.filter((k) => k.startsWith("item_1")).slice(0, 7));
  assert.equal(small.complete, false);
  const clamped = await kv.list({ limit: 1000 });
  assert.equal(clamped.keys.length, 256);
  const all = await kv.list({ prefix: "other" });
  assert.deepEqual(all, { keys: [{ key: "other_1", name: "other_1" }], complete: true, cursor: "" });
  const none = await kv.list({ prefix: "zzz" });
  assert.deepEqual(none, { keys: [], complete: true, cursor: "" });
  await assert.rejects(kv.list({ limit: 0 }), TypeError);
  await assert.rejects(kv.list({ limit: 2.5 }), TypeError);
  await assert.rejects(kv.list({ prefix: 5 }), TypeError);
});

test("data is shared with the TEO SDK both ways, in the same zone and namespace", async () => {
  const namespace = ns("shared");
  const kv = createEdgeOneKV({ namespace, zoneId: "zone-edge" });
  await kv.put("from_binding", "written by the edge function ✓");
  const got = await sdk.EdgeKVGet({ ZoneId: "zone-edge", Namespace: namespace, Keys: ["from_binding"] });
  assert.deepEqual(
    got.Data.map((d) => [d.Key, d.Value]),
    [["from_binding", "written by the edge function ✓"]],
  );

  await sdk.EdgeKVPut({ ZoneId: "zone-edge", Namespace: namespace, Key: "from_sdk", Value: '{"by":"ci"}' });
  assert.deepEqual(await kv.get("from_sdk", "json"), { by: "ci" });
  const listed = await sdk.EdgeKVList({ ZoneId: "zone-edge", Namespace: namespace, Limit: 10 });
  assert.deepEqual(listed.Keys, ["from_binding", "from_sdk"]);

  await kv.delete("from_sdk");
  const after = await sdk.EdgeKVGet({ ZoneId: "zone-edge", Namespace: namespace, Keys: ["from_sdk"] });
  assert.equal(after.Data[0].Value, "");

  // The zone is part of the address: the same namespace name in zone "default" is other data.
  assert.equal(await createEdgeOneKV({ namespace }).get("from_binding"), null);
});

test("installEdgeOneKV sets the globals the runtime would", async () => {
  const namespace = ns("global");
  const bound = installEdgeOneKV({ my_kv: namespace, other_kv: { namespace: ns("global2") } });
  try {
    assert.equal(globalThis.my_kv, bound.my_kv);
    await globalThis.my_kv.put("count", "1");
    assert.equal(await globalThis.my_kv.get("count"), "1");
    assert.equal(await globalThis.other_kv.get("count"), null);
  } finally {
    delete globalThis.my_kv;
    delete globalThis.other_kv;
  }
});

test("bad credentials and unreachable gateways surface as errors with the vendor's code", async () => {
  const kv = createEdgeOneKV({ namespace: ns("auth"), tencent: { secretKey: "wrong" } });
  await assert.rejects(kv.get("k"), (e) => {
    assert.ok(e instanceof KvmuxApiError);
    assert.equal(e.code, "AuthFailure.SignatureFailure");
    return true;
  });
  assert.throws(() => createEdgeOneKV({}), TypeError);
  const nowhere = createEdgeOneKV({ namespace: ns("down"), url: "http://127.0.0.1:9" });
  await assert.rejects(nowhere.get("k"), { name: "TypeError", message: /fetch failed/ });
});
