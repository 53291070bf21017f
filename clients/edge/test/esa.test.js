// The ESA Edge Routine EdgeKV binding against a real kvmux, cross-checked with the pinned ESA SDK.
// ESA allows 10 namespaces per account, so the whole file shares three.
import test, { after, before } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { configure, EdgeKV, installEdgeKV, KvmuxApiError, ESA_MAX_VALUE_BYTES } from "../src/index.js";
import { startKvmux, esaClient } from "./kvmux.js";

let kvmux;
let esa;
let Esa;
const key = (p) => `${p}-${randomBytes(4).toString("hex")}`;
const NS = `edge${randomBytes(3).toString("hex")}`;

before(async () => {
  kvmux = await startKvmux();
  configure({ url: kvmux.url });
  ({ client: esa, Esa } = esaClient(kvmux.endpoint));
});
after(async () => kvmux?.stop());

const readAll = async (stream) => new Uint8Array(await new Response(stream).arrayBuffer());

test("the constructor needs { namespace }", () => {
  assert.throws(() => new EdgeKV(), { name: "TypeError", message: /namespace/ });
  assert.throws(() => new EdgeKV({}), TypeError);
  assert.throws(() => new EdgeKV({ namespace: "" }), TypeError);
  assert.equal(new EdgeKV({ namespace: "ns" }).namespace, "ns");
});

test("put, get and delete round-trip; missing keys read as undefined; delete says whether it deleted", async () => {
  const kv = new EdgeKV({ namespace: NS });
  const k = key("k");
  assert.equal(await kv.get(k, { type: "text" }), undefined);
  assert.equal(await kv.put(k, "hello 世界"), undefined);
  assert.equal(await kv.get(k, { type: "text" }), "hello 世界");
  await kv.put(k, "second");
  assert.equal(await kv.get(k, { type: "text" }), "second");
  assert.equal(await kv.delete(k), true);
  assert.equal(await kv.delete(k), false);
  assert.equal(await kv.get(k), undefined);
});

test("get: stream is the default; text, json and arrayBuffer on request", async () => {
  const kv = new EdgeKV({ namespace: NS });
  const k = key("types");
  await kv.put(k, '{"n":1,"s":"ü"}');
  const dflt = await kv.get(k);
  assert.ok(dflt instanceof ReadableStream, "the documented default type is stream");
  assert.equal(new TextDecoder().decode(await readAll(dflt)), '{"n":1,"s":"ü"}');
  assert.ok((await kv.get(k, {})) instanceof ReadableStream);
  assert.ok((await kv.get(k, { type: "stream" })) instanceof ReadableStream);
  assert.equal(await kv.get(k, { type: "text" }), '{"n":1,"s":"ü"}');
  assert.deepEqual(await kv.get(k, { type: "json" }), { n: 1, s: "ü" });
  const buf = await kv.get(k, { type: "arrayBuffer" });
  assert.ok(buf instanceof ArrayBuffer);
  assert.equal(buf.byteLength, Buffer.byteLength('{"n":1,"s":"ü"}'));
  for (const type of ["stream", "text", "json", "arrayBuffer"]) assert.equal(await kv.get(key("no"), { type }), undefined);
  await kv.put(k, "not json");
  await assert.rejects(kv.get(k, { type: "json" }), SyntaxError);
  await assert.rejects(kv.get(k, { type: "blob" }), TypeError);
});

test("put takes string, ReadableStream, ArrayBuffer and Response; binary survives intact", async () => {
  const kv = new EdgeKV({ namespace: NS });
  const binary = new Uint8Array(256).map((_, i) => i);
  const k1 = key("ab");
  await kv.put(k1, binary.buffer.slice(0));
  assert.deepEqual(new Uint8Array(await kv.get(k1, { type: "arrayBuffer" })), binary);
  const k2 = key("rs");
  await kv.put(k2, new Blob(["str", "eam"]).stream());
  assert.equal(await kv.get(k2, { type: "text" }), "stream");
  const k3 = key("resp");
  await kv.put(k3, new Response("from a Response", { headers: { "x-a": "b" } }));
  assert.equal(await kv.get(k3, { type: "text" }), "from a Response");
  const k4 = key("empty");
  await kv.put(k4, "");
  assert.equal(await kv.get(k4, { type: "text" }), "", "an empty value is a value, not a missing key");
  for (const bad of [1, {}, null, new Uint8Array([1])]) {
    await assert.rejects(kv.put(key("bad"), bad), { name: "TypeError", message: /must be one of/ });
  }
  await assert.rejects(kv.put(key("one")), { name: "TypeError", message: /2 arguments required/ });
  await assert.rejects(kv.put("", "v"), TypeError);
  await assert.rejects(kv.get(""), TypeError);
  await assert.rejects(kv.delete(5), TypeError);
});

test("the documented 1.8 MB limit: exactly 1,800,000 bytes is stored, one more is refused", async () => {
  const kv = new EdgeKV({ namespace: NS });
  const k = key("big");
  await kv.put(k, new Uint8Array(ESA_MAX_VALUE_BYTES).fill(0x61).buffer);
  assert.equal((await kv.get(k, { type: "arrayBuffer" })).byteLength, 1_800_000);
  await assert.rejects(kv.put(key("big"), "a".repeat(ESA_MAX_VALUE_BYTES + 1)), {
    message: /value too large: 1800001 bytes/,
  });
  let pulled = 0;
  const endless = new ReadableStream({
    pull(c) {
      pulled += 1;
      c.enqueue(new Uint8Array(64 * 1024));
    },
  });
  await assert.rejects(kv.put(key("big"), endless), { message: /value too large/ });
  assert.ok(pulled <= 30, `read ${pulled} chunks of an endless stream`);
});

test("kvmux's key rules come back as the vendor's error", async () => {
  const kv = new EdgeKV({ namespace: NS });
  await assert.rejects(kv.put("a b", "v"), (e) => {
    assert.ok(e instanceof KvmuxApiError);
    assert.equal(e.code, "InvalidKey.Malformed");
    return true;
  });
  await assert.rejects(kv.put("k".repeat(513), "v"), { code: "InvalidKey.ExceedsMaximum" });
});

test("data is shared with the ESA SDK both ways", async () => {
  const kv = new EdgeKV({ namespace: NS });
  const k = key("shared");
  await kv.put(k, "from the routine ✓");
  const got = await esa.getKv(new Esa.GetKvRequest({ namespace: NS, key: k }));
  assert.equal(got.body.value, "from the routine ✓");

  const bin = new Uint8Array([0, 1, 2, 250, 255]);
  await kv.put(`${k}b`, bin.buffer.slice(0));
  const b64 = await esa.getKv(new Esa.GetKvRequest({ namespace: NS, key: `${k}b`, base64: true }));
  assert.deepEqual(new Uint8Array(Buffer.from(b64.body.value, "base64")), bin);

  await esa.putKv(new Esa.PutKvRequest({ namespace: NS, key: `${k}s`, value: '{"by":"ci"}' }));
  assert.deepEqual(await kv.get(`${k}s`, { type: "json" }), { by: "ci" });
  await esa.deleteKv(new Esa.DeleteKvRequest({ namespace: NS, key: `${k}s` }));
  assert.equal(await kv.get(`${k}s`, { type: "text" }), undefined);

  const listed = await esa.listKvs(new Esa.ListKvsRequest({ namespace: NS, prefix: k }));
  assert.deepEqual(listed.body.keys.map((x) => x.name).sort(), [k, `${k}b`].sort());
});

test("a namespace is created on first touch, visible to the SDK", async () => {
  const fresh = `edgefresh${randomBytes(3).toString("hex")}`;
  const kv = new EdgeKV({ namespace: fresh });
  await kv.put("k", "v");
  const ns = await esa.getKvNamespace(new Esa.GetKvNamespaceRequest({ namespace: fresh }));
  assert.equal(ns.body.namespace, fresh);
});

test("installEdgeKV sets globalThis.EdgeKV, with the configured gateway", async () => {
  const saved = globalThis.EdgeKV;
  try {
    const Bound = installEdgeKV({ url: kvmux.url });
    assert.equal(globalThis.EdgeKV, Bound);
    assert.equal(Bound.name, "EdgeKV");
    const kv = new globalThis.EdgeKV({ namespace: NS });
    assert.ok(kv instanceof EdgeKV);
    const k = key("g");
    await kv.put(k, "global");
    assert.equal(await kv.get(k, { type: "text" }), "global");
    assert.throws(() => new globalThis.EdgeKV(), TypeError);
  } finally {
    globalThis.EdgeKV = saved;
  }
});

test("wrong credentials surface as SignatureDoesNotMatch", async () => {
  const kv = new EdgeKV({ namespace: NS, aliyun: { accessKeySecret: "wrong" } });
  await assert.rejects(kv.get("k"), { code: "SignatureDoesNotMatch" });
});
