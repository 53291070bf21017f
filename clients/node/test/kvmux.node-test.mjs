// node:test with the packed `kvmux` package (installed from dist/ into an empty npm project) and
// the real Tencent and Aliyun Node SDKs: one gateway for the file, reset before each test.
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { startKvmux, bundledBinary } from "kvmux";
import clients from "./clients.cjs";

const { tencentClient, esaClient, Esa, median } = clients;
let kvmux;
before(async () => { kvmux = await startKvmux(); });
after(async () => { await kvmux?.stop(); });
beforeEach(async () => { await kvmux.reset(); });

test("the binary is the package's own, unless KVMUX_BIN says otherwise", () => {
  assert.match(bundledBinary(), /node_modules\/kvmux\/bin\/linux-x64\/kvmux$/);
  assert.match(kvmux.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(kvmux.url, `http://${kvmux.host}`);
  assert.ok(kvmux.pid > 0);
});

test("Tencent EdgeKV: create, put, get", async () => {
  const c = tencentClient(kvmux);
  const where = { ZoneId: "zone-1", Namespace: "ns" };
  await c.CreateEdgeKVNamespace(where);
  await c.EdgeKVPut({ ...where, Key: "greeting", Value: "hello" });
  const got = await c.EdgeKVGet({ ...where, Keys: ["greeting"] });
  assert.equal(got.Data[0].Value, "hello");
});

test("reset before each test: the same namespace can be created again", async () => {
  const c = tencentClient(kvmux);
  await c.CreateEdgeKVNamespace({ ZoneId: "zone-1", Namespace: "ns" }); // made by the test above
});

test("Aliyun ESA: a TTL expires when the clock is advanced", async () => {
  const esa = esaClient(kvmux);
  await esa.createKvNamespace(new Esa.CreateKvNamespaceRequest({ namespace: "ns" }));
  await esa.putKv(new Esa.PutKvRequest({ namespace: "ns", key: "k", value: "v", expirationTtl: 60 }));
  assert.equal((await esa.getKv(new Esa.GetKvRequest({ namespace: "ns", key: "k" }))).body.value, "v");
  const before = Math.floor(Date.now() / 1000);
  assert.ok(await kvmux.advanceClock(120) >= before + 120);
  await assert.rejects(esa.getKv(new Esa.GetKvRequest({ namespace: "ns", key: "k" })),
    (e) => e.code === "InvalidKey.NotFound");
});

test("checkpoint and restore", async () => {
  const esa = esaClient(kvmux);
  await esa.createKvNamespace(new Esa.CreateKvNamespaceRequest({ namespace: "ns" }));
  await esa.putKv(new Esa.PutKvRequest({ namespace: "ns", key: "k", value: "seeded" }));
  await kvmux.checkpoint("seeded");
  await esa.putKv(new Esa.PutKvRequest({ namespace: "ns", key: "k", value: "changed" }));
  await kvmux.restore("seeded");
  assert.equal((await esa.getKv(new Esa.GetKvRequest({ namespace: "ns", key: "k" }))).body.value, "seeded");
});

test("addCredentials: a key pair of another account sees only its own namespaces", async () => {
  await kvmux.addCredentials("aliyun", "LTAItenant1", "tenant-secret", "tenant1");
  const tenant = esaClient(kvmux, ["LTAItenant1", "tenant-secret"]);
  await tenant.createKvNamespace(new Esa.CreateKvNamespaceRequest({ namespace: "mine" }));
  await assert.rejects(esaClient(kvmux).getKv(new Esa.GetKvRequest({ namespace: "mine", key: "k" })),
    (e) => e.code === "InvalidNameSpace.NotFound");
  await kvmux.reset({ dialect: "tencent" }); // a scoped reset leaves the Aliyun namespace
  await tenant.putKv(new Esa.PutKvRequest({ namespace: "mine", key: "k", value: "v" }));
});

test("overhead: start-up to ready, and a reset between tests (medians)", async () => {
  const starts = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    const other = await startKvmux();
    starts.push(performance.now() - t0);
    await other.stop();
  }
  const c = tencentClient(kvmux);
  const resets = [];
  for (let i = 0; i < 200; i++) {
    await c.CreateEdgeKVNamespace({ ZoneId: "zone-1", Namespace: "ns" });
    await c.EdgeKVPut({ ZoneId: "zone-1", Namespace: "ns", Key: "k", Value: "v" });
    const t0 = performance.now();
    await kvmux.reset();
    resets.push(performance.now() - t0);
  }
  console.log(`kvmux launcher node: startKvmux() median ${median(starts).toFixed(1)} ms (n=10), ` +
    `reset() median ${median(resets).toFixed(2)} ms (n=200)`);
});
