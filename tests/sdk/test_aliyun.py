"""The real Alibaba Cloud SDKs against kvmux, with only the endpoint changed.

- alibabacloud-esa20240910 (tea, V3 ACS3-HMAC-SHA256 by default and `signature_algorithm='v2'`):
  all 15 ESA KV actions, incl. PutKvWithHighCapacityAdvance with a 20 MB value through HTTP_PROXY.
- alibabacloud-dcdn20180115 (tea): the DCDN KV actions, incl. a batch *Advance upload.
- aliyun-python-sdk-core + aliyun-python-sdk-dcdn (legacy, RPC HMAC-SHA1): put/get/delete.
- the vendor's error codes, statuses and envelopes.
"""

import base64
import io
import json
import os
import secrets
import time

import pytest
from alibabacloud_dcdn20180115 import models as dcdn_models
from alibabacloud_dcdn20180115.client import Client as DcdnClient
from alibabacloud_esa20240910 import models as esa_models
from alibabacloud_esa20240910.client import Client as EsaClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.utils import Utils
from alibabacloud_tea_util import models as util_models

from conftest import CA_BUNDLE, DEV_IDS, DEV_SECRET, SCHEME, burst, tls_only_skip

ALIYUN_ID = DEV_IDS["aliyun"]


def uniq(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(5)}"


def config(endpoint: str, secret: str = DEV_SECRET, key_id: str = ALIYUN_ID, **kw):
    return open_api_models.Config(
        access_key_id=key_id,
        access_key_secret=secret,
        endpoint=endpoint,
        protocol=SCHEME,
        ca=CA_BUNDLE,  # the SDK's CA option; None over plain HTTP
        **kw,
    )


@pytest.fixture
def esa(kvmux):
    return EsaClient(config(kvmux.endpoint))


@pytest.fixture
def dcdn(kvmux):
    return DcdnClient(config(kvmux.endpoint))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """The credential chain may read ~/.alibabacloud; keep it away from the real HOME."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        monkeypatch.delenv(var, raising=False)


def vendor_error(excinfo):
    """(code, HTTP status) of a tea SDK exception."""
    e = excinfo.value
    return e.code, getattr(e, "status_code", None) or getattr(e, "statusCode", None)


def expect(code: str, status: int, fn, *args):
    with pytest.raises(Exception) as ei:
        fn(*args)
    assert vendor_error(ei) == (code, status), repr(ei.value)
    data = getattr(ei.value, "data", None) or {}
    assert data.get("RequestId"), data
    assert data.get("Recommend", "").endswith(code)
    return ei.value


# ---------------------------------------------------------------- ESA, every action


@pytest.mark.parametrize("signature", ["ACS3-HMAC-SHA256", "v2", "ACS3-HMAC-SM3"])
def test_esa_kv_actions(kvmux, signature):
    kw = {} if signature == "ACS3-HMAC-SHA256" else {"signature_algorithm": signature}
    esa = EsaClient(config(kvmux.endpoint, **kw))
    ns = uniq("esa")

    created = esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=ns, description="sdk test"))
    assert created.status_code == 200
    assert created.body.namespace == ns
    assert created.body.description == "sdk test"
    assert created.body.status == "online"
    assert created.body.namespace_id

    value = "hello world & more/ä+%20"
    put = esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="k1", value=value, expiration_ttl=3600))
    assert put.body.length == str(len(value.encode()))
    assert put.body.value == value
    assert len(put.body.request_id) == 36

    assert esa.get_kv(esa_models.GetKvRequest(namespace=ns, key="k1")).body.value == value
    b64 = esa.get_kv(esa_models.GetKvRequest(namespace=ns, key="k1", base_64=True)).body.value
    assert base64.b64decode(b64).decode() == value

    # Base64 put stores the decoded bytes
    esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="bin", value=base64.b64encode(b"\x00\x01hi").decode(), base_64=True))
    got = esa.get_kv(esa_models.GetKvRequest(namespace=ns, key="bin", base_64=True)).body.value
    assert base64.b64decode(got) == b"\x00\x01hi"

    detail = esa.get_kv_detail(esa_models.GetKvDetailRequest(namespace=ns, key="k1")).body
    assert detail.value == value
    assert 3590 <= int(detail.expiration_ttl) <= 3600

    # long values are echoed truncated
    long_value = "a" * 150 + "b" * 150
    echo = esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="long", value=long_value)).body.value
    assert echo == "a" * 100 + "..." + "b" * 100

    batch = esa.batch_put_kv(
        esa_models.BatchPutKvRequest(
            namespace=ns,
            kv_list=[
                esa_models.BatchPutKvRequestKvList(key="p1", value="v1", expiration_ttl=60),
                esa_models.BatchPutKvRequestKvList(key="p2", value="v2"),
                esa_models.BatchPutKvRequestKvList(key="bad key", value="v3"),
            ],
        )
    ).body
    assert batch.success_keys == ["p1", "p2"]
    assert batch.fail_keys == ["bad key"]

    listed = esa.list_kvs(esa_models.ListKvsRequest(namespace=ns, prefix="p", page_number=1, page_size=50)).body
    assert listed.total_count == 2
    assert [k.name for k in listed.keys] == ["p1", "p2"]
    assert listed.keys[0].update_time.endswith("Z")
    page2 = esa.list_kvs(esa_models.ListKvsRequest(namespace=ns, page_number=2, page_size=2)).body
    assert page2.page_number == 2 and page2.page_size == 2
    assert page2.total_count == 5  # bin, k1, long, p1, p2
    assert [k.name for k in page2.keys] == ["long", "p1"]

    deleted = esa.batch_delete_kv(esa_models.BatchDeleteKvRequest(namespace=ns, keys=["p1", "p2", "a/b"])).body
    assert deleted.success_keys == ["p1", "p2"]
    assert deleted.fail_keys == ["a/b"]

    got_ns = esa.get_kv_namespace(esa_models.GetKvNamespaceRequest(namespace=ns)).body
    assert got_ns.namespace == ns and got_ns.status == "online"
    assert got_ns.capacity == 1 << 30
    assert got_ns.capacity_used > 0

    account = esa.get_kv_account().body
    assert account.status == "online"
    assert account.namespace_quota == 10
    assert ns in [n.namespace for n in account.namespace_list]
    assert esa.describe_kv_account_status().body.status == "online"

    esa.delete_kv(esa_models.DeleteKvRequest(namespace=ns, key="k1"))
    expect("InvalidKey.NotFound", 404, esa.get_kv, esa_models.GetKvRequest(namespace=ns, key="k1"))

    esa.delete_kv_namespace(esa_models.DeleteKvNamespaceRequest(namespace=ns))
    expect("InvalidNameSpace.NotFound", 404, esa.get_kv_namespace, esa_models.GetKvNamespaceRequest(namespace=ns))


def test_ttl_expires_with_the_engine_clock_and_ttl_beats_expiration(make_kvmux):
    # its own gateway: moving the shared one's clock by a day could expire other suites' items
    kvmux = make_kvmux()
    esa = EsaClient(config(kvmux.endpoint))
    ns = uniq("ttl")
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=ns))
    now = int(time.time())
    esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="short", value="v", expiration_ttl=60, expiration=now + 100000))
    esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="abs", value="v", expiration=now + 100000))
    esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="forever", value="v"))
    kvmux.advance(61)
    expect("InvalidKey.NotFound", 404, esa.get_kv, esa_models.GetKvRequest(namespace=ns, key="short"))
    assert esa.get_kv(esa_models.GetKvRequest(namespace=ns, key="abs")).body.value == "v"
    kvmux.advance(100000)
    expect("InvalidKey.NotFound", 404, esa.get_kv, esa_models.GetKvRequest(namespace=ns, key="abs"))
    assert esa.get_kv(esa_models.GetKvRequest(namespace=ns, key="forever")).body.value == "v"


# ---------------------------------------------------------------- high capacity


ADVANCE_NEEDS_PLAIN_HTTP = (
    "the *Advance upload goes to the Bucket + Endpoint that kvmux's AuthorizeFileUpload answers, which "
    "kv-aliyun spells http:// whatever the port serves; through an https proxy requests would not verify "
    "the gateway's certificate for http:// targets, so nothing here would be a trusted TLS exchange"
)


@tls_only_skip(ADVANCE_NEEDS_PLAIN_HTTP)
def test_put_kv_with_high_capacity_advance_20mb_via_http_proxy(kvmux, esa, monkeypatch):
    """The SDK's own recipe: HTTP_PROXY sends AuthorizeFileUpload (to openplatform.aliyuncs.com),
    the OSS PostObject and the final action to kvmux, as absolute-form requests."""
    ns = uniq("hc")
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=ns))
    monkeypatch.setenv("HTTP_PROXY", kvmux.url)
    for var in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    value = base64.b64encode(os.urandom(15 * 1024 * 1024)).decode()  # 20 MB of text
    assert len(value) == 20 * 1024 * 1024
    body = json.dumps({"Namespace": ns, "Key": "big", "Value": value}).encode()
    proxied = EsaClient(config(kvmux.endpoint))
    resp = proxied.put_kv_with_high_capacity_advance(
        esa_models.PutKvWithHighCapacityAdvanceRequest(namespace=ns, key="big", url_object=io.BytesIO(body)),
        util_models.RuntimeOptions(read_timeout=120000, connect_timeout=10000),
    )
    assert resp.status_code == 200
    assert resp.body.length == str(len(value))
    monkeypatch.delenv("HTTP_PROXY")
    got = esa.get_kv_with_options(
        esa_models.GetKvRequest(namespace=ns, key="big"),
        util_models.RuntimeOptions(read_timeout=120000),
    ).body.value
    assert got == value


@tls_only_skip(ADVANCE_NEEDS_PLAIN_HTTP)
def test_batch_high_capacity_advance_via_runtime_proxy(kvmux, esa):
    ns = uniq("hcb")
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=ns))
    runtime = util_models.RuntimeOptions(http_proxy=kvmux.url)
    kv_list = [{"Key": f"k{i}", "Value": f"v{i}" * 1000} for i in range(20)] + [{"Key": "bad key", "Value": "x"}]
    body = json.dumps({"Namespace": ns, "KvList": kv_list}).encode()
    put = esa.batch_put_kv_with_high_capacity_advance(
        esa_models.BatchPutKvWithHighCapacityAdvanceRequest(namespace=ns, url_object=io.BytesIO(body)), runtime
    ).body
    assert put.success_keys == [f"k{i}" for i in range(20)]
    assert put.fail_keys == ["bad key"]
    assert esa.get_kv(esa_models.GetKvRequest(namespace=ns, key="k7")).body.value == "v7" * 1000

    body = json.dumps({"Namespace": ns, "Keys": ["k0", "k1"]}).encode()
    deleted = esa.batch_delete_kv_with_high_capacity_advance(
        esa_models.BatchDeleteKvWithHighCapacityAdvanceRequest(namespace=ns, url_object=io.BytesIO(body)), runtime
    ).body
    assert deleted.success_keys == ["k0", "k1"]
    expect("InvalidKey.NotFound", 404, esa.get_kv, esa_models.GetKvRequest(namespace=ns, key="k0"))
    assert esa.list_kvs(esa_models.ListKvsRequest(namespace=ns)).body.total_count == 18


def test_high_capacity_url_must_name_an_uploaded_object(esa):
    ns = uniq("hcu")
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=ns))
    expect(
        "InvalidParameters",
        400,
        esa.put_kv_with_high_capacity,
        esa_models.PutKvWithHighCapacityRequest(namespace=ns, key="k", url="http://127.0.0.1:1/kvupload/nothing"),
    )


# ---------------------------------------------------------------- DCDN


def test_dcdn_kv_actions(kvmux, dcdn):
    ns = uniq("dcdn")
    created = dcdn.put_dcdn_kv_namespace(dcdn_models.PutDcdnKvNamespaceRequest(namespace=ns, description="d")).body
    assert created.namespace == ns and created.status == "online"

    put = dcdn.put_dcdn_kv(dcdn_models.PutDcdnKvRequest(namespace=ns, key="k1", value="dcdn value", expiration_ttl=120)).body
    assert put.length == 10  # an int in DCDN's model
    assert dcdn.get_dcdn_kv(dcdn_models.GetDcdnKvRequest(namespace=ns, key="k1")).body.value == "dcdn value"
    detail = dcdn.get_dcdn_kv_detail(dcdn_models.GetDcdnKvDetailRequest(namespace=ns, key="k1")).body
    assert detail.value == "dcdn value" and 110 <= int(detail.expiration_ttl) <= 120
    status = dcdn.get_dcdn_kv_status(dcdn_models.GetDcdnKvStatusRequest(namespace=ns, key="k1")).body
    assert status.complete is True
    assert status.expire.endswith("+08:00")

    batch = dcdn.batch_put_dcdn_kv(
        dcdn_models.BatchPutDcdnKvRequest(
            namespace=ns,
            kv_list=[
                dcdn_models.BatchPutDcdnKvRequestKvList(key="b1", value="1"),
                dcdn_models.BatchPutDcdnKvRequestKvList(key="b2", value="2"),
            ],
        )
    ).body
    assert batch.success_keys == ["b1", "b2"] and batch.fail_keys == []
    listed = dcdn.list_dcdn_kv(dcdn_models.ListDcdnKvRequest(namespace=ns, prefix="b")).body
    assert listed.total_count == 2 and [k.name for k in listed.keys] == ["b1", "b2"]
    deleted = dcdn.batch_delete_dcdn_kv(dcdn_models.BatchDeleteDcdnKvRequest(namespace=ns, keys=["b1"])).body
    assert deleted.success_keys == ["b1"]

    described = dcdn.describe_dcdn_kv_namespace(dcdn_models.DescribeDcdnKvNamespaceRequest(namespace=ns)).body
    assert described.namespace == ns and described.mode == "Normal" and described.capacity == 1 << 30
    account = dcdn.describe_dcdn_kv_account().body
    assert ns in [n.namespace for n in account.namespace_list]
    assert dcdn.describe_dcdn_kv_account_status().body.status == "online"
    usage = dcdn.describe_kv_usage_data(dcdn_models.DescribeKvUsageDataRequest(field="acc")).body
    assert usage.kv_usage_data == [] and usage.start_time
    qps = dcdn.describe_kv_real_time_qps_data(dcdn_models.DescribeKvRealTimeQpsDataRequest()).body
    assert qps.kv_qps_data == []

    dcdn.delete_dcdn_kv(dcdn_models.DeleteDcdnKvRequest(namespace=ns, key="k1"))
    with pytest.raises(Exception) as ei:
        dcdn.get_dcdn_kv(dcdn_models.GetDcdnKvRequest(namespace=ns, key="k1"))
    assert vendor_error(ei) == ("InvalidKey.NotFound", 404)
    dcdn.delete_dcdn_kv_namespace(dcdn_models.DeleteDcdnKvNamespaceRequest(namespace=ns))


@tls_only_skip(ADVANCE_NEEDS_PLAIN_HTTP)
def test_dcdn_batch_advance_through_the_open_platform_endpoint(kvmux, dcdn):
    ns = uniq("dcdnadv")
    dcdn.put_dcdn_kv_namespace(dcdn_models.PutDcdnKvNamespaceRequest(namespace=ns, description="d"))
    # batch *Advance through the private open-platform endpoint (no proxy at all)
    dcdn._open_platform_endpoint = kvmux.endpoint
    body = json.dumps({"Namespace": ns, "KvList": [{"Key": "h1", "Value": "x" * 5000}]}).encode()
    hc = dcdn.batch_put_dcdn_kv_with_high_capacity_advance(
        dcdn_models.BatchPutDcdnKvWithHighCapacityAdvanceRequest(namespace=ns, url_object=io.BytesIO(body)),
        util_models.RuntimeOptions(),
    ).body
    assert hc.success_keys == ["h1"]
    body = json.dumps({"Namespace": ns, "Keys": ["h1"]}).encode()
    hd = dcdn.batch_delete_dcdn_kv_with_high_capacity_advance(
        dcdn_models.BatchDeleteDcdnKvWithHighCapacityAdvanceRequest(namespace=ns, url_object=io.BytesIO(body)),
        util_models.RuntimeOptions(),
    ).body
    assert hd.success_keys == ["h1"]
    dcdn.delete_dcdn_kv_namespace(dcdn_models.DeleteDcdnKvNamespaceRequest(namespace=ns))


def test_esa_and_dcdn_namespaces_are_kept_apart(esa, dcdn):
    ns = uniq("apart")
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=ns))
    esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="k", value="esa"))
    with pytest.raises(Exception) as ei:
        dcdn.get_dcdn_kv(dcdn_models.GetDcdnKvRequest(namespace=ns, key="k"))
    assert vendor_error(ei) == ("InvalidNameSpace.NotFound", 404)


# ---------------------------------------------------------------- legacy SDK


def legacy_client(kvmux, secret=DEV_SECRET):
    from aliyunsdkcore.client import AcsClient

    client = AcsClient(ALIYUN_ID, secret, "cn-hangzhou", verify=CA_BUNDLE)  # CA: None over HTTP
    client.add_endpoint("cn-hangzhou", "dcdn", kvmux.endpoint)
    return client


def legacy_request(cls_name, kvmux, **params):
    import importlib

    module = importlib.import_module(f"aliyunsdkdcdn.request.v20180115.{cls_name}")
    req = getattr(module, cls_name)()
    req.set_protocol_type(SCHEME)
    req.set_endpoint(kvmux.endpoint)
    for k, v in params.items():
        getattr(req, f"set_{k}")(v)
    return req


def test_legacy_sdk_put_get_delete(kvmux):
    from aliyunsdkcore.acs_exception.exceptions import ServerException

    client = legacy_client(kvmux)
    ns = uniq("legacy")
    client.do_action_with_exception(legacy_request("PutDcdnKvNamespaceRequest", kvmux, Namespace=ns, Description="legacy"))
    client.do_action_with_exception(legacy_request("PutDcdnKvRequest", kvmux, Namespace=ns, Key="k1", Value="hello legacy world", ExpirationTtl=3600))
    got = json.loads(client.do_action_with_exception(legacy_request("GetDcdnKvRequest", kvmux, Namespace=ns, Key="k1")))
    assert got["Value"] == "hello legacy world"
    batch = json.loads(
        client.do_action_with_exception(
            legacy_request("BatchPutDcdnKvRequest", kvmux, Namespace=ns, KvList=[{"Key": "b1", "Value": "1"}])
        )
    )
    assert batch["SuccessKeys"] == ["b1"]
    client.do_action_with_exception(legacy_request("DeleteDcdnKvRequest", kvmux, Namespace=ns, Key="k1"))
    with pytest.raises(ServerException) as ei:
        client.do_action_with_exception(legacy_request("GetDcdnKvRequest", kvmux, Namespace=ns, Key="k1"))
    assert ei.value.get_error_code() == "InvalidKey.NotFound"
    assert ei.value.get_http_status() == 404

    # wrong secret: the legacy SDK reads our string-to-sign out of the message, finds it equal to
    # its own, and concludes the secret is wrong
    with pytest.raises(ServerException) as ei:
        legacy_client(kvmux, "wrong").do_action_with_exception(legacy_request("GetDcdnKvRequest", kvmux, Namespace=ns, Key="b1"))
    assert ei.value.get_error_code() == "InvalidAccessKeySecret"
    assert ei.value.get_http_status() == 400


# ---------------------------------------------------------------- errors


def test_namespace_and_key_errors(kvmux, esa):
    ns = uniq("err")
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=ns))
    expect("InvalidNameSpace.Duplicate", 406, esa.create_kv_namespace, esa_models.CreateKvNamespaceRequest(namespace=ns))
    expect("InvalidNameSpace.Malformed", 400, esa.create_kv_namespace, esa_models.CreateKvNamespaceRequest(namespace="bad ns"))
    expect("InvalidNameSpace.NotFound", 404, esa.get_kv, esa_models.GetKvRequest(namespace=uniq("none"), key="k"))
    expect("InvalidKey.Malformed", 400, esa.put_kv, esa_models.PutKvRequest(namespace=ns, key="a b", value="v"))
    expect("InvalidKey.Malformed", 400, esa.put_kv, esa_models.PutKvRequest(namespace=ns, key="a/b", value="v"))
    expect("InvalidKey.ExceedsMaximum", 400, esa.put_kv, esa_models.PutKvRequest(namespace=ns, key="k" * 513, value="v"))
    expect("InvalidKey.NotFound", 404, esa.get_kv, esa_models.GetKvRequest(namespace=ns, key="missing"))
    expect("InvalidValue.ExceedsMaximum", 400, esa.put_kv, esa_models.PutKvRequest(namespace=ns, key="k", value="v" * 2_000_001))
    esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="max", value="v" * 2_000_000))
    expect(
        "InvalidKey.TooManyKeys", 400, esa.batch_delete_kv,
        esa_models.BatchDeleteKvRequest(namespace=ns, keys=[f"k{i}" for i in range(10_001)]),
    )
    expect("MissingParameter", 400, esa.put_kv, esa_models.PutKvRequest(namespace=ns, value="v"))
    expect("InvalidParameters", 400, esa.list_kvs, esa_models.ListKvsRequest(namespace=ns, page_size=101))
    expect("InvalidParameters", 400, esa.list_kvs, esa_models.ListKvsRequest(namespace=ns, page_number=501, page_size=100))
    expect(
        "InvalidParameters", 400, esa.put_kv,
        esa_models.PutKvRequest(namespace=ns, key="k", value="v", expiration=int(time.time()) - 10),
    )


def test_namespace_quota_is_ten_per_product(make_kvmux):
    server = make_kvmux()
    esa = EsaClient(config(server.endpoint))
    dcdn = DcdnClient(config(server.endpoint))
    for i in range(10):
        esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=f"q{i}"))
    expect("InvalidNameSpace.QuotaFull", 406, esa.create_kv_namespace, esa_models.CreateKvNamespaceRequest(namespace="q10"))
    assert esa.get_kv_account().body.namespace_used == 10
    # DCDN's quota is its own
    dcdn.put_dcdn_kv_namespace(dcdn_models.PutDcdnKvNamespaceRequest(namespace="q10"))


def test_vendor_rate_limit_gives_too_many_requests(make_kvmux):
    server = make_kvmux(extra_toml="[limits]\nvendor_rate_limits = true\n")
    dcdn = DcdnClient(config(server.endpoint))
    ns = uniq("rate")
    dcdn.put_dcdn_kv_namespace(dcdn_models.PutDcdnKvNamespaceRequest(namespace=ns))
    outcomes = burst(
        lambda i: dcdn.put_dcdn_kv(dcdn_models.PutDcdnKvRequest(namespace=ns, key=f"k{i}", value="v")), 240)
    codes = [(getattr(o, "code", repr(o)), getattr(o, "status_code", None))
             for o in outcomes if isinstance(o, Exception)]
    assert codes and set(codes) == {("TooManyRequests", 429)}
    assert len(codes) < len(outcomes), "the calls within the limit were served"


def test_signature_errors(kvmux, monkeypatch):
    expect("SignatureDoesNotMatch", 400, EsaClient(config(kvmux.endpoint, secret="wrong")).describe_kv_account_status)
    e = expect(
        "SignatureDoesNotMatch", 400,
        EsaClient(config(kvmux.endpoint, secret="wrong", signature_algorithm="v2")).describe_kv_account_status,
    )
    assert "server string to sign is:GET&%2F&" in e.data["Message"]
    expect("InvalidAccessKeyId.NotFound", 404, EsaClient(config(kvmux.endpoint, key_id="LTAInobody")).describe_kv_account_status)

    esa = EsaClient(config(kvmux.endpoint))
    nonce = secrets.token_hex(16)
    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: nonce))
    esa.describe_kv_account_status()
    expect("SignatureNonceUsed", 400, esa.describe_kv_account_status)
    monkeypatch.undo()

    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: "2020-01-01T00:00:00Z"))
    expect("InvalidTimeStamp.Expired", 400, EsaClient(config(kvmux.endpoint)).describe_kv_account_status)


def test_auth_mode_off_serves_any_signature(make_kvmux):
    server = make_kvmux(extra_toml='[auth]\nmode = "off"\n')
    esa = EsaClient(config(server.endpoint, secret="wrong"))
    assert esa.describe_kv_account_status().body.status == "online"


# ---------------------------------------------------------------- account, token, upload-authorization errors


def two_accounts_toml() -> str:
    from conftest import dev_credentials_toml

    return dev_credentials_toml() + (
        '\n[[credentials]]\ndialect = "aliyun"\nid = "LTAIsecond"\nsecret = "secondsecret"\naccount = "second"\n'
        '\n[[credentials]]\ndialect = "aliyun"\nid = "LTAIspaced"\nsecret = "spacedsecret"\naccount = "bad account"\n'
    )


def test_account_errors(make_kvmux):
    server = make_kvmux(
        extra_toml='[aliyun]\ninactive_accounts = ["second"]\n', credentials_toml=two_accounts_toml()
    )
    inactive = EsaClient(config(server.endpoint, key_id="LTAIsecond", secret="secondsecret"))
    expect("InvalidAccount.NotFound", 404, inactive.get_kv_account)
    assert inactive.describe_kv_account_status().body.status == "offline"
    malformed = EsaClient(config(server.endpoint, key_id="LTAIspaced", secret="spacedsecret"))
    expect("InvalidAccount.Malformed", 400, malformed.get_kv_account)
    # the dev account is untouched
    assert EsaClient(config(server.endpoint)).get_kv_account().body.status == "online"


def test_unknown_sts_token_is_refused(kvmux):
    esa = EsaClient(config(kvmux.endpoint, security_token="a-token-kvmux-never-issued"))
    expect("Unauthorized.InvalidToken", 403, esa.describe_kv_account_status)


def manual_upload(server, key_id, secret, body: bytes, product="ESA") -> str:
    """Steps 1 and 2 of the *Advance methods by hand: AuthorizeFileUpload through the generic
    OpenAPI client, then the OSS PostObject. Returns the Url the SDK would build."""
    import requests
    from alibabacloud_tea_openapi import utils_models as open_api_util_models
    from alibabacloud_tea_openapi.client import Client as OpenApiClient

    client = OpenApiClient(config(server.endpoint, key_id=key_id, secret=secret))
    params = open_api_util_models.Params(
        action="AuthorizeFileUpload", version="2019-12-19", protocol="HTTPS", pathname="/",
        method="GET", auth_type="AK", style="RPC", req_body_type="formData", body_type="json",
    )
    auth = client.call_api(
        params, open_api_util_models.OpenApiRequest(query={"Product": product}), util_models.RuntimeOptions()
    )["body"]
    assert auth["UseAccelerate"] is False
    form = {
        "OSSAccessKeyId": auth["AccessKeyId"], "Signature": auth["Signature"], "key": auth["ObjectKey"],
        "policy": auth["EncodedPolicy"], "success_action_status": "201",
    }
    r = requests.post(server.url + "/", data=form, files={"file": (auth["ObjectKey"], body)}, timeout=30)
    assert r.status_code == 201, r.text
    assert "<PostResponse>" in r.text
    return f"http://{auth['Bucket']}.{auth['Endpoint']}/{auth['ObjectKey']}"


def test_dcdn_put_with_high_capacity_and_upload_authorization_errors(make_kvmux):
    server = make_kvmux(credentials_toml=two_accounts_toml())
    dcdn = DcdnClient(config(server.endpoint))
    ns = uniq("hcd")
    dcdn.put_dcdn_kv_namespace(dcdn_models.PutDcdnKvNamespaceRequest(namespace=ns))
    value = "z" * (3 * 1024 * 1024)
    url = manual_upload(server, ALIYUN_ID, DEV_SECRET, json.dumps({"Namespace": ns, "Key": "k", "Value": value}).encode(), "dcdn")
    put = dcdn.put_dcdn_kv_with_high_capacity(dcdn_models.PutDcdnKvWithHighCapacityRequest(namespace=ns, key="k", url=url)).body
    assert put.length == len(value)
    assert dcdn.get_dcdn_kv(dcdn_models.GetDcdnKvRequest(namespace=ns, key="k")).body.value == value

    # an upload authorized for one account cannot be used by another
    url = manual_upload(server, ALIYUN_ID, DEV_SECRET, json.dumps({"Namespace": ns, "Key": "k2", "Value": "v"}).encode())
    second = EsaClient(config(server.endpoint, key_id="LTAIsecond", secret="secondsecret"))
    second.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=ns))
    expect(
        "Unauthorized.InvalidParameters", 403, second.put_kv_with_high_capacity,
        esa_models.PutKvWithHighCapacityRequest(namespace=ns, key="k2", url=url),
    )
    # ... and it expires with its authorization
    esa = EsaClient(config(server.endpoint))
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=ns))
    server.advance(3601)
    expect(
        "Unauthorized.InvalidTime", 403, esa.put_kv_with_high_capacity,
        esa_models.PutKvWithHighCapacityRequest(namespace=ns, key="k2", url=url),
    )


def test_modifying_one_item_too_quickly_with_vendor_rate_limits(make_kvmux):
    server = make_kvmux(extra_toml="[limits]\nvendor_rate_limits = true\n")
    esa = EsaClient(config(server.endpoint))
    ns = uniq("quick")
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=ns))
    esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="k", value="1"))
    expect("TooQuickRequests", 429, esa.put_kv, esa_models.PutKvRequest(namespace=ns, key="k", value="2"))
    time.sleep(1.1)
    esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="k", value="3"))
    assert esa.get_kv(esa_models.GetKvRequest(namespace=ns, key="k")).body.value == "3"


def test_namespace_capacity_gives_exceeds_capacity(make_kvmux):
    """1 GB per namespace in production; `[aliyun] namespace_capacity` shrinks it for a test."""
    server = make_kvmux(extra_toml="[aliyun]\nnamespace_capacity = 100000\n")
    esa = EsaClient(config(server.endpoint))
    ns = uniq("cap")
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=ns))
    assert esa.get_kv_namespace(esa_models.GetKvNamespaceRequest(namespace=ns)).body.capacity == 100000
    esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="a", value="x" * 60000))
    expect("InvalidKey.ExceedsCapacity", 403, esa.put_kv, esa_models.PutKvRequest(namespace=ns, key="b", value="y" * 60000))
    # freeing space makes room again, exactly
    esa.delete_kv(esa_models.DeleteKvRequest(namespace=ns, key="a"))
    esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="b", value="y" * 60000))


def test_unknown_action_is_invalid_action_not_found(kvmux):
    from alibabacloud_tea_openapi import utils_models as open_api_util_models
    from alibabacloud_tea_openapi.client import Client as OpenApiClient

    client = OpenApiClient(config(kvmux.endpoint))
    params = open_api_util_models.Params(
        action="ListKvNamespaces", version="2024-09-10", protocol="HTTPS", pathname="/",
        method="GET", auth_type="AK", style="RPC", req_body_type="formData", body_type="json",
    )
    expect(
        "InvalidAction.NotFound", 404, client.call_api, params,
        open_api_util_models.OpenApiRequest(query={}), util_models.RuntimeOptions(),
    )


def test_async_methods_over_aiohttp(kvmux, esa):
    """The *_async methods use aiohttp, which adds unsigned headers (Accept, Accept-Encoding)."""
    import asyncio

    ns = uniq("async")
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=ns))

    async def run():
        client = EsaClient(config(kvmux.endpoint))
        await client.put_kv_async(esa_models.PutKvRequest(namespace=ns, key="k", value="via aiohttp"))
        got = await client.get_kv_async(esa_models.GetKvRequest(namespace=ns, key="k"))
        return got.body.value

    assert asyncio.run(run()) == "via aiohttp"


def test_configured_sts_token_is_accepted(make_kvmux):
    server = make_kvmux(extra_toml='[aliyun]\nsecurity_tokens = ["sts-token-for-ci"]\n')
    esa = EsaClient(config(server.endpoint, security_token="sts-token-for-ci"))
    assert esa.describe_kv_account_status().body.status == "online"
    expect(
        "Unauthorized.InvalidToken", 403,
        EsaClient(config(server.endpoint, security_token="other")).describe_kv_account_status,
    )


def test_dcdn_namespace_names_are_case_insensitive(kvmux, dcdn, esa):
    """DCDN namespace names are case-insensitive (spec §1.2): a second PutDcdnKvNamespace that
    differs only in case is the duplicate error, and any casing reaches the namespace, which
    keeps the name as created. ESA documents no such rule, so its names stay exact."""
    ns = "CaseNs_" + secrets.token_hex(4)
    created = dcdn.put_dcdn_kv_namespace(dcdn_models.PutDcdnKvNamespaceRequest(namespace=ns)).body
    assert created.namespace == ns
    expect("InvalidNameSpace.Duplicate", 406, dcdn.put_dcdn_kv_namespace,
           dcdn_models.PutDcdnKvNamespaceRequest(namespace=ns.lower()))
    dcdn.put_dcdn_kv(dcdn_models.PutDcdnKvRequest(namespace=ns, key="k", value="v1"))
    assert dcdn.get_dcdn_kv(dcdn_models.GetDcdnKvRequest(namespace=ns.upper(), key="k")).body.value == "v1"
    described = dcdn.describe_dcdn_kv_namespace(dcdn_models.DescribeDcdnKvNamespaceRequest(namespace=ns.lower())).body
    assert described.namespace == ns
    listed = [n.namespace for n in dcdn.describe_dcdn_kv_account().body.namespace_list]
    assert listed.count(ns) == 1 and ns.lower() not in listed

    esa_ns = "CaseEsa_" + secrets.token_hex(4)
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=esa_ns))
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=esa_ns.lower()))
    expect("InvalidNameSpace.NotFound", 404, esa.get_kv, esa_models.GetKvRequest(namespace=esa_ns.upper(), key="k"))
    for name in (esa_ns, esa_ns.lower()):
        esa.delete_kv_namespace(esa_models.DeleteKvNamespaceRequest(namespace=name))

    dcdn.delete_dcdn_kv_namespace(dcdn_models.DeleteDcdnKvNamespaceRequest(namespace=ns.upper()))
    expect("InvalidNameSpace.NotFound", 404, dcdn.get_dcdn_kv, dcdn_models.GetDcdnKvRequest(namespace=ns, key="k"))


def test_engine_clock_survives_a_restart(make_kvmux, tmp_path):
    """Time only moves forward: after `clock/advance` and a graceful restart on the same data,
    remaining TTLs keep counting down from where they were and a key that had expired stays gone
    (before, the offset was forgotten: ExpirationTtl went 3500 -> 3600 and the expired key, not
    yet swept, was readable again)."""
    data_dir = str(tmp_path / "data")
    first = make_kvmux(data_dir=data_dir)
    esa = EsaClient(config(first.endpoint))
    ns = uniq("clock")
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace=ns))
    esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="long", value="v", expiration_ttl=3600))
    esa.put_kv(esa_models.PutKvRequest(namespace=ns, key="short", value="v", expiration_ttl=60))
    first.advance(100)
    first.stop()

    second = make_kvmux(data_dir=data_dir)
    esa = EsaClient(config(second.endpoint))
    ttl = int(esa.get_kv_detail(esa_models.GetKvDetailRequest(namespace=ns, key="long")).body.expiration_ttl)
    assert 3490 <= ttl <= 3500, ttl
    expect("InvalidKey.NotFound", 404, esa.get_kv, esa_models.GetKvRequest(namespace=ns, key="short"))
    listed = esa.list_kvs(esa_models.ListKvsRequest(namespace=ns)).body
    assert listed.total_count == 1 and [k.name for k in listed.keys] == ["long"]


def test_a_bound_namespace_is_whole_on_both_sides(make_kvmux):
    """With a Tencent namespace bound to an Aliyun one (docs/OPERATOR.md §6), each vendor sees it
    under its own name in every describe and listing, and creating it again through the other
    vendor is that vendor's duplicate error. Before, the second create made a hidden duplicate
    (after which the data was unreachable from both sides), GetKvNamespace answered Tencent's
    name, and the listings left out a namespace created through the other side."""
    from test_tencent import call, teo, error_of as tencent_error_of

    server = make_kvmux(extra_toml=(
        '[[bindings]]\naccount = "dev"\ntencent_zone = "zone-1"\n'
        'tencent_namespace = "orders"\naliyun_namespace = "orders-esa"\n'
        '[[bindings]]\naccount = "dev"\ntencent_zone = "zone-1"\n'
        'tencent_namespace = "legacy"\naliyun_namespace = "migrated"\n'
    ))
    esa = EsaClient(config(server.endpoint))
    tc = teo(server)

    # Created through Tencent: Aliyun sees it as `orders-esa` everywhere, and may not create it.
    call(tc, "CreateEdgeKVNamespace", ZoneId="zone-1", Namespace="orders")
    call(tc, "EdgeKVPut", ZoneId="zone-1", Namespace="orders", Key="k", Value="from tencent")
    expect("InvalidNameSpace.Duplicate", 406, esa.create_kv_namespace,
           esa_models.CreateKvNamespaceRequest(namespace="orders-esa"))
    assert esa.get_kv_namespace(esa_models.GetKvNamespaceRequest(namespace="orders-esa")).body.namespace == "orders-esa"
    listed = [n.namespace for n in esa.get_kv_account().body.namespace_list]
    assert "orders-esa" in listed and "orders" not in listed
    assert esa.get_kv(esa_models.GetKvRequest(namespace="orders-esa", key="k")).body.value == "from tencent"

    # Created through Aliyun: Tencent sees it as `legacy`, and may not create it.
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace="migrated", description="d"))
    esa.put_kv(esa_models.PutKvRequest(namespace="migrated", key="m", value="from aliyun"))
    e = tencent_error_of(call, tc, "CreateEdgeKVNamespace", ZoneId="zone-1", Namespace="legacy")
    assert (e.code, "already exists" in e.message) == ("InvalidParameterValue", True), (e.code, e.message)
    names = [n["Namespace"] for n in call(tc, "DescribeEdgeKVNamespaces", ZoneId="zone-1")["KVNamespaces"]]
    assert sorted(names) == ["legacy", "orders"]
    [d] = call(tc, "EdgeKVGet", ZoneId="zone-1", Namespace="legacy", Keys=["m"])["Data"]
    assert d["Value"] == "from aliyun"
    listed = [n.namespace for n in esa.get_kv_account().body.namespace_list]
    assert sorted(listed) == ["migrated", "orders-esa"]

    # Deleting through one side deletes it for both.
    esa.delete_kv_namespace(esa_models.DeleteKvNamespaceRequest(namespace="orders-esa"))
    names = [n["Namespace"] for n in call(tc, "DescribeEdgeKVNamespaces", ZoneId="zone-1")["KVNamespaces"]]
    assert names == ["legacy"]


def test_import_gives_back_the_exported_timestamps(make_kvmux, tmp_path):
    """`kvmux export` then `kvmux import` into a fresh store restores Tencent's CreatedOn and
    ModifiedOn and Aliyun's UpdateTime as exported; before, all three were the import time."""
    import subprocess

    from conftest import kvmux_bin
    from test_tencent import call, teo

    first = make_kvmux(data_dir=str(tmp_path / "first"))
    tc = teo(first)
    call(tc, "CreateEdgeKVNamespace", ZoneId="z", Namespace="kept")
    esa = EsaClient(config(first.endpoint))
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace="keptesa"))
    esa.put_kv(esa_models.PutKvRequest(namespace="keptesa", key="k", value="v"))
    [before_ns] = call(tc, "DescribeEdgeKVNamespaces", ZoneId="z")["KVNamespaces"]
    [before_key] = esa.list_kvs(esa_models.ListKvsRequest(namespace="keptesa")).body.keys
    first.stop()
    dump = subprocess.run([kvmux_bin(), "export", "--config", first.config_path],
                          check=True, capture_output=True).stdout

    time.sleep(2.1)  # the vendors' timestamps have one-second resolution
    second = make_kvmux(data_dir=str(tmp_path / "second"))
    second.stop()
    subprocess.run([kvmux_bin(), "import", "--config", second.config_path], input=dump,
                   check=True, capture_output=True)
    second.start()
    [after_ns] = call(teo(second), "DescribeEdgeKVNamespaces", ZoneId="z")["KVNamespaces"]
    assert (after_ns["CreatedOn"], after_ns["ModifiedOn"]) == (before_ns["CreatedOn"], before_ns["ModifiedOn"])
    esa = EsaClient(config(second.endpoint))
    [after_key] = esa.list_kvs(esa_models.ListKvsRequest(namespace="keptesa")).body.keys
    assert (after_key.name, after_key.update_time) == ("k", before_key.update_time)
