// The signers against the vendor specs' own vectors: if these pass, a failure in the end-to-end
// suites is not a signing bug.
import test from "node:test";
import assert from "node:assert/strict";
import { tc3Headers, acs3Headers, acsPercent } from "../src/sign.js";

test("TC3-HMAC-SHA256 reproduces tencent.md §6's Python-style vector", () => {
  const h = tc3Headers({
    secretId: "AKIDtest",
    secretKey: "secret",
    host: "127.0.0.1:8080",
    action: "EdgeKVPut",
    body: '{"ZoneId": "zone-1", "Namespace": "ns", "Key": "k", "Value": "v"}',
    timestamp: 1700000000,
    signAction: false,
  });
  assert.equal(
    h.Authorization,
    "TC3-HMAC-SHA256 Credential=AKIDtest/2023-11-14/teo/tc3_request, SignedHeaders=content-type;host, " +
      "Signature=bd40e418d49d0668ddc9f579a72950dcfb8738b8b17cb1440db210f9cc650c19",
  );
  assert.equal(h["X-TC-Timestamp"], "1700000000");
});

test("TC3-HMAC-SHA256 reproduces the Node-style vector (host without port, service 127)", () => {
  const h = tc3Headers({
    secretId: "AKIDtest",
    secretKey: "secret",
    host: "127.0.0.1",
    service: "127",
    action: "EdgeKVPut",
    body: '{"ZoneId":"zone-1","Namespace":"ns","Key":"k","Value":"v"}',
    timestamp: 1700000000,
    signAction: false,
  });
  assert.match(h.Authorization, /Signature=a77ad0ba518f3618a4d771d420ce97de697854a1e619f05247afd023c9a4a157$/);
});

test("ACS3-HMAC-SHA256 reproduces the captured ESA PutKv vector (aliyun vectors: python-tea-esa-PutKv)", () => {
  const h = acs3Headers({
    accessKeyId: "testid",
    accessKeySecret: "testsecret",
    host: "127.0.0.1:58775",
    method: "POST",
    action: "PutKv",
    query: { Base64: "False", ExpirationTtl: "3600", Key: "k1", Namespace: "ns1" },
    body: "Value=hello+world+%26+more%2F%C3%A4",
    date: "2026-11-22T02:33:18Z",
    nonce: "eaa81206f6a963e5df0cb273b2054767",
    extraHeaders: {
      accept: "application/json",
      "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
      "x-acs-credentials-provider": "static_ak",
    },
  });
  assert.equal(
    h.Authorization,
    "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=accept;content-type;host;user-agent;x-acs-action;" +
      "x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version," +
      "Signature=a511c0e932357f2598a582c8a8f65a297d9aa9a5937e126bb518323bfd7ff0e3",
  );
});

test("ACS3 percent-encoding is RFC 3986 (space %20, * %2A, / %2F, ~ kept)", () => {
  assert.equal(acsPercent("a b*c/d~e'(f)!"), "a%20b%2Ac%2Fd~e%27%28f%29%21");
  assert.equal(acsPercent("ä"), "%C3%A4");
});

test("the binding's TC3 signs x-tc-action, so one body sent as two actions never shares a signature", () => {
  const base = { secretId: "AKIDtest", secretKey: "secret", host: "127.0.0.1:8080", body: '{"Keys":["k"]}', timestamp: 1700000000 };
  const get = tc3Headers({ ...base, action: "EdgeKVGet" });
  const del = tc3Headers({ ...base, action: "EdgeKVDelete" });
  assert.match(get.Authorization, /SignedHeaders=content-type;host;x-tc-action, /);
  assert.notEqual(get.Authorization, del.Authorization);
});
