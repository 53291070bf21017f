// greeting.test.mjs: `node --test` with the kvmux tarball and tencentcloud-sdk-nodejs-teo installed
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { startKvmux } from "kvmux";
import { teo } from "tencentcloud-sdk-nodejs-teo";

let kvmux;
before(async () => { kvmux = await startKvmux(); });  // memory store, a free 127.0.0.1 port
after(() => kvmux.stop());
beforeEach(() => kvmux.reset());                       // every test starts empty

test("put then get", async () => {
  const [secretId, secretKey] = kvmux.credentials("tencent");
  const c = new teo.v20220901.Client({ credential: { secretId, secretKey }, region: "",
    profile: { httpProfile: { endpoint: kvmux.host, protocol: "http://" } } });
  const where = { ZoneId: "zone-1", Namespace: "ns" };
  await c.CreateEdgeKVNamespace(where);
  await c.EdgeKVPut({ ...where, Key: "greeting", Value: "hello" });
  assert.equal((await c.EdgeKVGet({ ...where, Keys: ["greeting"] })).Data[0].Value, "hello");
});
