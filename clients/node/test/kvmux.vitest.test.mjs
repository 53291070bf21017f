// vitest with the packed `kvmux` package and the real Tencent and Aliyun Node SDKs: one gateway
// for the file (beforeAll), reset before each test.
import { afterAll, beforeAll, beforeEach, expect, test } from "vitest";
import { startKvmux } from "kvmux";
import clients from "./clients.cjs";

const { tencentClient, esaClient, Esa } = clients;
let kvmux;
beforeAll(async () => { kvmux = await startKvmux(); });
afterAll(async () => { await kvmux?.stop(); });
beforeEach(async () => { await kvmux.reset(); });

test("Tencent EdgeKV through the SDK", async () => {
  const c = tencentClient(kvmux);
  const where = { ZoneId: "zone-1", Namespace: "ns" };
  await c.CreateEdgeKVNamespace(where);
  await c.EdgeKVPut({ ...where, Key: "greeting", Value: "hello" });
  expect((await c.EdgeKVGet({ ...where, Keys: ["greeting"] })).Data[0].Value).toBe("hello");
});

test("Aliyun ESA through the SDK, after a reset (the namespace name is free again)", async () => {
  const esa = esaClient(kvmux);
  await esa.createKvNamespace(new Esa.CreateKvNamespaceRequest({ namespace: "ns" }));
  await esa.putKv(new Esa.PutKvRequest({ namespace: "ns", key: "k", value: "v", expirationTtl: 60 }));
  expect((await esa.getKv(new Esa.GetKvRequest({ namespace: "ns", key: "k" }))).body.value).toBe("v");
  await kvmux.advanceClock(61);
  await expect(esa.getKv(new Esa.GetKvRequest({ namespace: "ns", key: "k" })))
    .rejects.toMatchObject({ code: "InvalidKey.NotFound" });
});

test("checkpoint and restore", async () => {
  const c = tencentClient(kvmux);
  const where = { ZoneId: "zone-1", Namespace: "ns" };
  await c.CreateEdgeKVNamespace(where);
  await c.EdgeKVPut({ ...where, Key: "k", Value: "seeded" });
  await kvmux.checkpoint("seeded");
  await c.EdgeKVPut({ ...where, Key: "k", Value: "changed" });
  await kvmux.restore("seeded");
  expect((await c.EdgeKVGet({ ...where, Keys: ["k"] })).Data[0].Value).toBe("seeded");
});
