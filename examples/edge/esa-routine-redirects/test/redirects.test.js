// Seeds the redirect table through the ESA SDK (as a CI script would), installs the kvmux-backed
// EdgeKV global, calls the routine with Requests and checks the replies and the hit counters it
// stored. (In your own project: import { installEdgeKV, configure } from "kvmux-edge".)
import test, { after, before } from "node:test";
import assert from "node:assert/strict";
import { configure, installEdgeKV } from "../../../../clients/edge/src/index.js";
import { startKvmux, esaClient } from "../../../../clients/edge/test/kvmux.js";
import routine, { ruleKey } from "../src/index.js";

let kvmux;
let esa;
let Esa;
before(async () => {
  kvmux = await startKvmux();
  configure({ url: kvmux.url });
  installEdgeKV();
  ({ client: esa, Esa } = esaClient(kvmux.endpoint));
  await esa.createKvNamespace(new Esa.CreateKvNamespaceRequest({ namespace: "redirects" }));
  for (const [path, rule] of [
    ["/docs", { location: "https://example.com/documentation", status: 301 }],
    ["/go/blog/", { location: "https://blog.example.com/" }],
  ]) {
    await esa.putKv(new Esa.PutKvRequest({ namespace: "redirects", key: ruleKey(path), value: JSON.stringify(rule) }));
  }
});
after(async () => {
  delete globalThis.EdgeKV;
  await kvmux?.stop();
});

test("a path in the table redirects, with the rule's status", async () => {
  const res = await routine.fetch(new Request("https://example.com/docs"));
  assert.equal(res.status, 301);
  assert.equal(res.headers.get("location"), "https://example.com/documentation");
  const blog = await routine.fetch(new Request("https://example.com/go/blog"));
  assert.equal(blog.status, 302);
  assert.equal(blog.headers.get("location"), "https://blog.example.com/");
});

test("a path not in the table is a 404", async () => {
  const res = await routine.fetch(new Request("https://example.com/nowhere"));
  assert.equal(res.status, 404);
});

test("hit counters the routine stored are read back through the SDK", async () => {
  await routine.fetch(new Request("https://example.com/docs"));
  await routine.fetch(new Request("https://example.com/docs"));
  const hits = await esa.getKv(new Esa.GetKvRequest({ namespace: "redirects", key: "hits__docs" }));
  assert.equal(hits.body.value, "3"); // one from the first test, two here
  const blog = await esa.getKv(new Esa.GetKvRequest({ namespace: "redirects", key: "hits__go__blog" }));
  assert.equal(blog.body.value, "1");
});
