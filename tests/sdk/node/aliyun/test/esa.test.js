// Drives the real @alicloud/esa20240910 SDK against a running kvmux: only the endpoint changes.
// The gateway address comes from KVMUX_ENDPOINT (e.g. 127.0.0.1:9090); dev credentials.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const Esa = require('@alicloud/esa20240910');
const { $OpenApiUtil } = require('@alicloud/openapi-core');

const endpoint = process.env.KVMUX_ENDPOINT;

function client(secret = 'kvmuxdevsecret') {
  assert.ok(endpoint, 'KVMUX_ENDPOINT must name a running kvmux (e.g. 127.0.0.1:9090)');
  return new Esa.default(new $OpenApiUtil.Config({
    accessKeyId: 'LTAIkvmuxdev',
    accessKeySecret: secret,
    endpoint,
    protocol: 'http',
  }));
}

const unique = (p) => `${p}${crypto.randomBytes(6).toString('hex')}`;

test('KVMUX_ENDPOINT is set', () => {
  assert.ok(endpoint, 'KVMUX_ENDPOINT must name a running kvmux (e.g. 127.0.0.1:9090)');
});

test('put, get, delete round-trip through the ESA SDK', async () => {
  const esa = client();
  const ns = unique('node');
  const created = await esa.createKvNamespace(new Esa.CreateKvNamespaceRequest({ namespace: ns, description: 'node sdk' }));
  assert.equal(created.statusCode, 200);
  assert.equal(created.body.namespace, ns);
  assert.equal(created.body.status, 'online');

  const put = await esa.putKv(new Esa.PutKvRequest({ namespace: ns, key: 'k1', value: 'hello from node ä', expirationTtl: 3600 }));
  assert.equal(put.statusCode, 200);
  assert.equal(put.body.length, String(Buffer.byteLength('hello from node ä')));
  assert.match(put.body.requestId, /^[0-9A-F-]{36}$/);

  const got = await esa.getKv(new Esa.GetKvRequest({ namespace: ns, key: 'k1' }));
  assert.equal(got.body.value, 'hello from node ä');

  const b64 = await esa.getKv(new Esa.GetKvRequest({ namespace: ns, key: 'k1', base64: true }));
  assert.equal(Buffer.from(b64.body.value, 'base64').toString(), 'hello from node ä');

  const detail = await esa.getKvDetail(new Esa.GetKvDetailRequest({ namespace: ns, key: 'k1' }));
  assert.ok(Number(detail.body.expirationTtl) > 3500);

  const del = await esa.deleteKv(new Esa.DeleteKvRequest({ namespace: ns, key: 'k1' }));
  assert.equal(del.statusCode, 200);

  await assert.rejects(
    esa.getKv(new Esa.GetKvRequest({ namespace: ns, key: 'k1' })),
    (e) => { assert.equal(e.code, 'InvalidKey.NotFound'); assert.equal(e.statusCode, 404); return true; },
  );
});

test('errors carry the vendor codes', async () => {
  const esa = client();
  await assert.rejects(
    esa.getKv(new Esa.GetKvRequest({ namespace: unique('missing'), key: 'k' })),
    (e) => { assert.equal(e.code, 'InvalidNameSpace.NotFound'); return true; },
  );
  await assert.rejects(
    client('wrong-secret').describeKvAccountStatus(),
    (e) => { assert.equal(e.code, 'SignatureDoesNotMatch'); assert.equal(e.statusCode, 400); return true; },
  );
});

test('batch put, list, batch delete and the account view', async () => {
  const esa = client();
  const ns = unique('nodeb');
  await esa.createKvNamespace(new Esa.CreateKvNamespaceRequest({ namespace: ns }));
  const put = await esa.batchPutKv(new Esa.BatchPutKvRequest({
    namespace: ns,
    kvList: [
      new Esa.BatchPutKvRequestKvList({ key: 'b1', value: 'one' }),
      new Esa.BatchPutKvRequestKvList({ key: 'b2', value: 'two', expirationTtl: 600 }),
      new Esa.BatchPutKvRequestKvList({ key: 'bad key', value: 'x' }),
    ],
  }));
  assert.deepEqual(put.body.successKeys, ['b1', 'b2']);
  assert.deepEqual(put.body.failKeys, ['bad key']);

  const listed = await esa.listKvs(new Esa.ListKvsRequest({ namespace: ns, prefix: 'b', pageSize: 1, pageNumber: 2 }));
  assert.equal(listed.body.totalCount, 2);
  assert.deepEqual(listed.body.keys.map((k) => k.name), ['b2']);

  const del = await esa.batchDeleteKv(new Esa.BatchDeleteKvRequest({ namespace: ns, keys: ['b1', 'b2'] }));
  assert.deepEqual(del.body.successKeys, ['b1', 'b2']);

  const account = await esa.getKvAccount();
  assert.ok(account.body.namespaceList.some((n) => n.namespace === ns));
  await esa.deleteKvNamespace(new Esa.DeleteKvNamespaceRequest({ namespace: ns }));
});

test('RPC V2 signatures (signatureAlgorithm v2) work too', async () => {
  assert.ok(endpoint, 'KVMUX_ENDPOINT must name a running kvmux (e.g. 127.0.0.1:9090)');
  const esa = new Esa.default(new $OpenApiUtil.Config({
    accessKeyId: 'LTAIkvmuxdev',
    accessKeySecret: 'kvmuxdevsecret',
    endpoint,
    protocol: 'http',
    signatureAlgorithm: 'v2',
  }));
  const ns = unique('nodev2');
  await esa.createKvNamespace(new Esa.CreateKvNamespaceRequest({ namespace: ns }));
  await esa.putKv(new Esa.PutKvRequest({ namespace: ns, key: 'k', value: 'v2 value +&=' }));
  const got = await esa.getKv(new Esa.GetKvRequest({ namespace: ns, key: 'k' }));
  assert.equal(got.body.value, 'v2 value +&=');
});
