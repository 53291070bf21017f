// Calls the edge function with a Request, with `visits_kv` bound to kvmux the way the runtime
// binds it, and checks the stored count through the Tencent SDK a CI script would use. (In your
// own project: import { installEdgeOneKV, configure } from "kvmux-edge".)
import test, { after, before } from "node:test";
import assert from "node:assert/strict";
import { configure, installEdgeOneKV } from "../../../../clients/edge/src/index.js";
import { startKvmux, teoClient } from "../../../../clients/edge/test/kvmux.js";
import { onRequest } from "../edge-functions/api/visits.js";

let kvmux;
let teo;
before(async () => {
  kvmux = await startKvmux();
  configure({ url: kvmux.url });
  installEdgeOneKV({ visits_kv: "site-visits" }); // zone "default"
  teo = teoClient(kvmux.endpoint);
});
after(async () => {
  delete globalThis.visits_kv;
  await kvmux?.stop();
});

const visit = async (page) => {
  const res = await onRequest({ request: new Request(`https://example.com/api/visits?page=${page}`) });
  assert.equal(res.status, 200);
  return res.json();
};

test("each visit increments the stored counter", async () => {
  assert.deepEqual(await visit("home"), { page: "home", visits: 1 });
  assert.deepEqual(await visit("home"), { page: "home", visits: 2 });
  assert.deepEqual(await visit("home"), { page: "home", visits: 3 });
  const stored = await teo.EdgeKVGet({ ZoneId: "default", Namespace: "site-visits", Keys: ["visits_home"] });
  assert.equal(stored.Data[0].Value, "3");
});

test("a count seeded by a CI script through the SDK is what the function continues from", async () => {
  await teo.EdgeKVPut({ ZoneId: "default", Namespace: "site-visits", Key: "visits_about_us", Value: "41" });
  assert.deepEqual(await visit("about-us"), { page: "about-us", visits: 42 });
  const listed = await teo.EdgeKVList({ ZoneId: "default", Namespace: "site-visits", Prefix: "visits_" });
  assert.deepEqual(listed.Keys, ["visits_about_us", "visits_home"]);
});
