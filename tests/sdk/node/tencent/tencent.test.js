// Drives the real tencentcloud-sdk-nodejs-teo against kvmux. The gateway address comes from
// KVMUX_ENDPOINT (e.g. 127.0.0.1:9090); the test fails, not skips, when it is unset. The Node SDK
// signs the host without its port and puts "127" in the credential scope (spec §6), so passing
// here proves the verifier's Node-specific leniency as well as the actions.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { teo } = require("tencentcloud-sdk-nodejs-teo");

const endpoint = process.env.KVMUX_ENDPOINT;

function client(options = {}) {
  assert.ok(endpoint, "KVMUX_ENDPOINT must name the kvmux gateway, e.g. 127.0.0.1:9090");
  return new teo.v20220901.Client({
    credential: {
      secretId: options.secretId ?? "AKIDkvmuxdev",
      secretKey: options.secretKey ?? "kvmuxdevsecret",
    },
    region: "",
    profile: {
      signMethod: options.signMethod,
      httpProfile: { endpoint, protocol: "http://", reqMethod: options.reqMethod ?? "POST" },
    },
  });
}

const unique = (p) => `${p}-${crypto.randomBytes(5).toString("hex")}`;

async function withNamespace(c, fn) {
  const zone = unique("zone-node");
  const ns = unique("ns");
  await c.CreateEdgeKVNamespace({ ZoneId: zone, Namespace: ns, Remark: "node" });
  try {
    await fn(zone, ns);
  } finally {
    await c.DeleteEdgeKVNamespace({ ZoneId: zone, Namespace: ns });
  }
}

test("put, get, list and delete round-trip", async () => {
  const c = client();
  await withNamespace(c, async (zone, ns) => {
    for (const [k, v] of [["hello", "world"], ["hello1", "世界"], ["other", "x"]]) {
      const r = await c.EdgeKVPut({ ZoneId: zone, Namespace: ns, Key: k, Value: v });
      assert.match(r.RequestId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    const got = await c.EdgeKVGet({ ZoneId: zone, Namespace: ns, Keys: ["hello1", "missing", "hello"] });
    assert.deepEqual(
      got.Data.map((d) => [d.Key, d.Value, d.Expiration]),
      [["hello1", "世界", ""], ["missing", "", ""], ["hello", "world", ""]],
    );

    const page1 = await c.EdgeKVList({ ZoneId: zone, Namespace: ns, Prefix: "he", Limit: 1 });
    assert.deepEqual(page1.Keys, ["hello"]);
    assert.equal(page1.Cursor, "hello");
    const page2 = await c.EdgeKVList({ ZoneId: zone, Namespace: ns, Prefix: "he", Limit: 1, Cursor: page1.Cursor });
    assert.deepEqual(page2.Keys, ["hello1"]);
    assert.equal(page2.Cursor, "");
    const all = await c.EdgeKVList({ ZoneId: zone, Namespace: ns });
    assert.deepEqual(all.Keys, ["hello", "hello1", "other"]);

    await c.EdgeKVDelete({ ZoneId: zone, Namespace: ns, Keys: ["hello", "never-existed"] });
    const after = await c.EdgeKVList({ ZoneId: zone, Namespace: ns });
    assert.deepEqual(after.Keys, ["hello1", "other"]);
  });
});

test("expiry is returned as ISO-8601 UTC", async () => {
  const c = client();
  await withNamespace(c, async (zone, ns) => {
    const at = Math.floor(Date.now() / 1000) + 7200;
    await c.EdgeKVPut({ ZoneId: zone, Namespace: ns, Key: "k", Value: "v", Expiration: at });
    const got = await c.EdgeKVGet({ ZoneId: zone, Namespace: ns, Keys: ["k"] });
    assert.equal(got.Data[0].Expiration, new Date(at * 1000).toISOString().replace(".000Z", "Z"));
  });
});

test("errors carry Tencent codes", async () => {
  const c = client();
  await assert.rejects(
    c.EdgeKVGet({ ZoneId: unique("zone-node"), Namespace: "absent", Keys: ["a"] }),
    (e) => e.code === "ResourceUnavailable.NamespaceNotFound" && /^[0-9a-f-]{36}$/.test(e.requestId),
  );
  await withNamespace(c, async (zone, ns) => {
    const keys = Array.from({ length: 21 }, (_, i) => `k${i}`);
    await assert.rejects(c.EdgeKVGet({ ZoneId: zone, Namespace: ns, Keys: keys }), { code: "InvalidParameter.KeysTooMany" });
    await assert.rejects(
      c.EdgeKVPut({ ZoneId: zone, Namespace: ns, Key: "k", Value: "v", ExpirationTTL: 59 }),
      { code: "InvalidParameterValue" },
    );
  });
  await assert.rejects(
    client({ secretKey: "wrong" }).DescribeEdgeKVNamespaces({ ZoneId: "z" }),
    { code: "AuthFailure.SignatureFailure" },
  );
  await assert.rejects(
    client({ secretId: "AKIDnobody" }).DescribeEdgeKVNamespaces({ ZoneId: "z" }),
    { code: "AuthFailure.SecretIdNotFound" },
  );
});

test("TC3 over GET and the legacy HmacSHA256 and HmacSHA1 styles", async () => {
  const c = client();
  await withNamespace(c, async (zone, ns) => {
    await c.EdgeKVPut({ ZoneId: zone, Namespace: ns, Key: "a", Value: "1" });
    await c.EdgeKVPut({ ZoneId: zone, Namespace: ns, Key: "b", Value: "2" });
    const viaGet = await client({ reqMethod: "GET" }).EdgeKVGet({ ZoneId: zone, Namespace: ns, Keys: ["a", "b"] });
    assert.deepEqual(viaGet.Data.map((d) => d.Value), ["1", "2"]);
    for (const signMethod of ["HmacSHA256", "HmacSHA1"]) {
      const legacy = client({ signMethod });
      const listed = await legacy.EdgeKVList({ ZoneId: zone, Namespace: ns, Limit: 1 });
      assert.deepEqual(listed.Keys, ["a"]);
      assert.equal(listed.Cursor, "a");
    }
  });
});
