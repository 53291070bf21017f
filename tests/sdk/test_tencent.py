"""Tencent EdgeOne EdgeKV against kvmux, driven by the real clients: tencentcloud-sdk-python-teo
(every action, every error code, TC3 POST and GET, legacy HmacSHA1/HmacSHA256, X-TC-Token,
UNSIGNED-PAYLOAD, a scheme in the endpoint) and tccli (put, get, list, delete). A few errors that
no SDK can be made to produce (a stale timestamp, malformed JSON, a mangled Authorization header)
are sent as hand-signed raw requests.
"""

import datetime
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.teo.v20220901 import models, teo_client

from conftest import CA_BUNDLE, SCHEME, burst, tls_only_skip

SECRET_ID = "AKIDkvmuxdev"
SECRET_KEY = "kvmuxdevsecret"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # The SDK routes through HTTP(S)_PROXY unless the endpoint is in NO_PROXY (spec §10).
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def teo(server, secret_id=SECRET_ID, secret_key=SECRET_KEY, token=None, sign_method=None,
        req_method="POST", language="zh-CN", endpoint=None, unsigned_payload=False):
    # `certification` is the SDK's CA option (None would mean certifi's bundle, not the gateway's).
    if endpoint is None:
        http_profile = HttpProfile(protocol=SCHEME, endpoint=server.endpoint, reqMethod=req_method,
                                   certification=CA_BUNDLE)
    else:
        http_profile = HttpProfile(endpoint=endpoint, reqMethod=req_method, certification=CA_BUNDLE)
    profile = ClientProfile(signMethod=sign_method, httpProfile=http_profile, language=language)
    profile.unsignedPayload = unsigned_payload
    return teo_client.TeoClient(credential.Credential(secret_id, secret_key, token), "", profile)


def common(server, version="2022-09-01"):
    profile = ClientProfile(httpProfile=HttpProfile(protocol=SCHEME, endpoint=server.endpoint,
                                                    certification=CA_BUNDLE))
    return CommonClient("teo", version, credential.Credential(SECRET_ID, SECRET_KEY), "", profile=profile)


def call(client, action: str, **params) -> dict:
    request = getattr(models, action + "Request")()
    request.from_json_string(json.dumps(params))
    response = getattr(client, action)(request)
    return json.loads(response.to_json_string())


def error_of(fn, *args, **kwargs) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as info:
        fn(*args, **kwargs)
    err = info.value
    assert UUID4.match(err.get_request_id() or ""), err
    return err


def code_of(client, action, **params) -> str:
    return error_of(call, client, action, **params).get_code()


@pytest.fixture
def c(kvmux):
    return teo(kvmux)


@pytest.fixture
def ns(c):
    """A fresh namespace in a fresh zone: (zone, namespace)."""
    zone, name = unique("zone"), unique("ns")
    call(c, "CreateEdgeKVNamespace", ZoneId=zone, Namespace=name)
    return zone, name


# ----------------------------------------------------------------------------------- raw requests

def tc3_raw(server, action, body: bytes, timestamp=None, secret_key=SECRET_KEY, authorization=None,
            version="2022-09-01", content_type="application/json"):
    """A TC3-signed request built by hand, for what no SDK will send. Returns (status, headers, body)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    date = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d")
    host = server.endpoint
    canonical = "\n".join([
        "POST", "/", "", f"content-type:{content_type}\nhost:{host}\n", "content-type;host",
        hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{date}/teo/tc3_request"
    sts = "\n".join(["TC3-HMAC-SHA256", str(timestamp), scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])

    def mac(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    k = mac(mac(mac(("TC3" + secret_key).encode(), date), "teo"), "tc3_request")
    signature = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    if authorization is None:
        authorization = (f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{scope}, "
                         f"SignedHeaders=content-type;host, Signature={signature}")
    request = urllib.request.Request(server.url + "/", data=body, method="POST", headers={
        "Content-Type": content_type, "Host": host, "X-TC-Action": action,
        "X-TC-Version": version, "X-TC-Timestamp": str(timestamp), "Authorization": authorization,
    })
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.status, r.headers, json.loads(r.read())


def raw_code(reply) -> str:
    status, headers, body = reply
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert UUID4.match(body["Response"]["RequestId"])
    return body["Response"]["Error"]["Code"]


# ------------------------------------------------------------------------------------- namespaces

def test_namespace_lifecycle(c):
    zone, name = unique("zone"), unique("ns")
    assert UUID4.match(call(c, "CreateEdgeKVNamespace", ZoneId=zone, Namespace=name, Remark="first")["RequestId"])
    listed = call(c, "DescribeEdgeKVNamespaces", ZoneId=zone)
    assert listed["TotalCount"] == 1
    [n] = listed["KVNamespaces"]
    assert n["Namespace"] == name and n["Remark"] == "first"
    assert n["Capacity"] == 1073741824 and n["CapacityUsed"] == 0 and n["References"] == []
    assert ISO_Z.match(n["CreatedOn"]) and ISO_Z.match(n["ModifiedOn"])

    call(c, "ModifyEdgeKVNamespace", ZoneId=zone, Namespace=name, Remark="second")
    [n] = call(c, "DescribeEdgeKVNamespaces", ZoneId=zone)["KVNamespaces"]
    assert n["Remark"] == "second"

    call(c, "EdgeKVPut", ZoneId=zone, Namespace=name, Key="abc", Value="12345")
    [n] = call(c, "DescribeEdgeKVNamespaces", ZoneId=zone)["KVNamespaces"]
    assert n["CapacityUsed"] == 8  # key bytes + value bytes

    call(c, "DeleteEdgeKVNamespace", ZoneId=zone, Namespace=name)
    after = call(c, "DescribeEdgeKVNamespaces", ZoneId=zone)
    assert after["TotalCount"] == 0 and after["KVNamespaces"] == []
    for action, extra in [("DeleteEdgeKVNamespace", {}), ("ModifyEdgeKVNamespace", {"Remark": "x"})]:
        assert code_of(c, action, ZoneId=zone, Namespace=name, **extra) == "ResourceUnavailable.NamespaceNotFound"


def test_namespaces_are_scoped_by_zone_and_recreated_empty(c):
    name, zone_a, zone_b = unique("ns"), unique("zone"), unique("zone")
    call(c, "CreateEdgeKVNamespace", ZoneId=zone_a, Namespace=name)
    call(c, "CreateEdgeKVNamespace", ZoneId=zone_b, Namespace=name)
    assert code_of(c, "CreateEdgeKVNamespace", ZoneId=zone_a, Namespace=name) == "InvalidParameterValue"
    call(c, "EdgeKVPut", ZoneId=zone_a, Namespace=name, Key="k", Value="in-a")
    got = call(c, "EdgeKVGet", ZoneId=zone_b, Namespace=name, Keys=["k"])
    assert got["Data"] == [{"Key": "k", "Value": "", "Expiration": ""}]
    call(c, "DeleteEdgeKVNamespace", ZoneId=zone_a, Namespace=name)
    call(c, "CreateEdgeKVNamespace", ZoneId=zone_a, Namespace=name)
    assert call(c, "EdgeKVList", ZoneId=zone_a, Namespace=name)["Keys"] == []


@pytest.mark.parametrize("bad", ["-", "-a", "a-", "a--b", "a_b", "a.b", "名字", "x" * 51])
def test_bad_namespace_names(c, bad):
    assert code_of(c, "CreateEdgeKVNamespace", ZoneId=unique("zone"), Namespace=bad) == \
        "InvalidParameter.BadNamespaceName"


def test_namespace_name_edges_and_remark_length(c):
    zone = unique("zone")
    call(c, "CreateEdgeKVNamespace", ZoneId=zone, Namespace="A" * 50, Remark="r" * 256)
    call(c, "CreateEdgeKVNamespace", ZoneId=zone, Namespace="a-1-b")
    assert code_of(c, "CreateEdgeKVNamespace", ZoneId=zone, Namespace="r257", Remark="r" * 257) == \
        "InvalidParameter.RemarkTooLong"
    assert code_of(c, "ModifyEdgeKVNamespace", ZoneId=zone, Namespace="a-1-b", Remark="备" * 257) == \
        "InvalidParameter.RemarkTooLong"
    names = {n["Namespace"] for n in call(c, "DescribeEdgeKVNamespaces", ZoneId=zone)["KVNamespaces"]}
    assert names == {"A" * 50, "a-1-b"}


def test_describe_paging_sorting_and_filters(make_kvmux):
    server = make_kvmux()
    c = teo(server)
    zone = "zone-describe"
    for name, remark in [("alpha", "red apple"), ("beta", "green"), ("gamma", "Red wine")]:
        call(c, "CreateEdgeKVNamespace", ZoneId=zone, Namespace=name, Remark=remark)
        server.advance(1)  # distinct creation times

    def names(**kw):
        out = call(c, "DescribeEdgeKVNamespaces", ZoneId=zone, **kw)
        return out["TotalCount"], [n["Namespace"] for n in out["KVNamespaces"]]

    assert names() == (3, ["gamma", "beta", "alpha"])  # created-on, desc by default
    assert names(SortOrder="asc") == (3, ["alpha", "beta", "gamma"])
    assert names(Offset=1, Limit=1) == (3, ["beta"])
    assert names(Offset=3) == (3, [])
    call(c, "ModifyEdgeKVNamespace", ZoneId=zone, Namespace="alpha", Remark="red apple 2")
    assert names(SortBy="updated-on") == (3, ["alpha", "gamma", "beta"])
    assert names(SortBy="created-on", SortOrder="desc") == (3, ["gamma", "beta", "alpha"])
    # Filters: fuzzy and case-insensitive; values OR, filters AND.
    assert names(Filters=[{"Name": "remark", "Values": ["red"]}]) == (2, ["gamma", "alpha"])
    assert names(Filters=[{"Name": "namespace", "Values": ["ph", "et"]}]) == (2, ["beta", "alpha"])
    assert names(Filters=[{"Name": "remark", "Values": ["red"]},
                          {"Name": "namespace", "Values": ["gam"]}]) == (1, ["gamma"])
    assert names(Filters=[{"Name": "namespace", "Values": ["alp"], "Fuzzy": False}]) == (0, [])
    assert names(Filters=[{"Name": "namespace", "Values": ["alpha"], "Fuzzy": False}]) == (1, ["alpha"])
    # TC3 over GET flattens Filters into Filters.0.Values.1=... with Fuzzy=True (spec §5).
    g = teo(server, req_method="GET")
    out = call(g, "DescribeEdgeKVNamespaces", ZoneId=zone, Limit=10,
               Filters=[{"Name": "namespace", "Values": ["alpha", "beta"], "Fuzzy": True}])
    assert out["TotalCount"] == 2

    assert code_of(c, "DescribeEdgeKVNamespaces", ZoneId=zone, SortBy="name") == "InvalidParameter.InvalidSortBy"
    assert code_of(c, "DescribeEdgeKVNamespaces", ZoneId=zone, SortOrder="up") == "InvalidParameter.InvalidSortOrder"
    assert code_of(c, "DescribeEdgeKVNamespaces", ZoneId=zone,
                   Filters=[{"Name": "size", "Values": ["1"]}]) == "InvalidParameter.InvalidFilterName"
    assert code_of(c, "DescribeEdgeKVNamespaces", ZoneId=zone,
                   Filters=[{"Name": "namespace", "Values": [str(i) for i in range(21)]}]) == "InvalidParameterValue"
    assert code_of(c, "DescribeEdgeKVNamespaces", ZoneId=zone, Limit=1001) == "InvalidParameterValue"
    assert code_of(c, "DescribeEdgeKVNamespaces", ZoneId=zone, Offset=-1) == "InvalidParameterValue"
    assert names(Limit=1000)[0] == 3


def test_namespace_limit(make_kvmux):
    server = make_kvmux(extra_toml="[tencent]\nmax_namespaces = 2\n")
    c = teo(server)
    call(c, "CreateEdgeKVNamespace", ZoneId="z1", Namespace="one")
    call(c, "CreateEdgeKVNamespace", ZoneId="z2", Namespace="two")
    assert code_of(c, "CreateEdgeKVNamespace", ZoneId="z1", Namespace="three") == \
        "LimitExceeded.NamespaceLimitExceeded"
    call(c, "DeleteEdgeKVNamespace", ZoneId="z2", Namespace="two")
    call(c, "CreateEdgeKVNamespace", ZoneId="z1", Namespace="three")


def test_namespace_capacity_is_exact(make_kvmux):
    # Tencent's capacity is 1 GB per namespace; a 100-byte one reaches LimitExceeded quickly.
    server = make_kvmux(extra_toml="[tencent]\nnamespace_capacity = 100\n")
    c = teo(server)
    kw = {"ZoneId": "z", "Namespace": "small"}
    call(c, "CreateEdgeKVNamespace", **kw)
    call(c, "EdgeKVPut", **kw, Key="k1", Value="v" * 48)  # 50 bytes
    call(c, "EdgeKVPut", **kw, Key="k2", Value="v" * 48)  # 100 bytes: exactly full
    assert code_of(c, "EdgeKVPut", **kw, Key="k3", Value="v") == "LimitExceeded"
    [n] = call(c, "DescribeEdgeKVNamespaces", ZoneId="z")["KVNamespaces"]
    assert (n["Capacity"], n["CapacityUsed"]) == (100, 100)
    call(c, "EdgeKVPut", **kw, Key="k1", Value="v" * 10)  # overwriting frees space
    call(c, "EdgeKVPut", **kw, Key="k3", Value="v" * 36)
    assert call(c, "DescribeEdgeKVNamespaces", ZoneId="z")["KVNamespaces"][0]["CapacityUsed"] == 100


# -------------------------------------------------------------------------------------------- keys

def test_put_get_list_delete(c, ns):
    zone, name = ns
    for key, value in [("hello", "world"), ("hello1", "世界 🌏"), ("键", "值"), ("a b/c?d", "x")]:
        call(c, "EdgeKVPut", ZoneId=zone, Namespace=name, Key=key, Value=value)
    got = call(c, "EdgeKVGet", ZoneId=zone, Namespace=name, Keys=["键", "missing", "hello1", "hello"])
    assert got["Data"] == [
        {"Key": "键", "Value": "值", "Expiration": ""},
        {"Key": "missing", "Value": "", "Expiration": ""},
        {"Key": "hello1", "Value": "世界 🌏", "Expiration": ""},
        {"Key": "hello", "Value": "world", "Expiration": ""},
    ]
    call(c, "EdgeKVPut", ZoneId=zone, Namespace=name, Key="hello", Value="again")  # overwrite
    assert call(c, "EdgeKVGet", ZoneId=zone, Namespace=name, Keys=["hello"])["Data"][0]["Value"] == "again"

    # The spec's own example: Prefix "he", Limit 1, then the returned cursor.
    first = call(c, "EdgeKVList", ZoneId=zone, Namespace=name, Prefix="he", Limit=1)
    assert (first["Keys"], first["Cursor"]) == (["hello"], "hello")
    second = call(c, "EdgeKVList", ZoneId=zone, Namespace=name, Prefix="he", Limit=1, Cursor="hello")
    assert (second["Keys"], second["Cursor"]) == (["hello1"], "")
    everything = call(c, "EdgeKVList", ZoneId=zone, Namespace=name)
    assert everything["Keys"] == sorted(["hello", "hello1", "键", "a b/c?d"], key=lambda k: k.encode())
    assert everything["Cursor"] == ""

    call(c, "EdgeKVDelete", ZoneId=zone, Namespace=name, Keys=["hello", "never-there"])
    assert call(c, "EdgeKVList", ZoneId=zone, Namespace=name, Prefix="hel")["Keys"] == ["hello1"]


def test_list_pages_through_many_keys_in_order(c, ns):
    zone, name = ns
    keys = [f"k{i:03d}" for i in range(45)]
    for k in reversed(keys):
        call(c, "EdgeKVPut", ZoneId=zone, Namespace=name, Key=k, Value="v")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"Limit": 10} if cursor is None else {"Limit": 10, "Cursor": cursor}
        page = call(c, "EdgeKVList", ZoneId=zone, Namespace=name, **params)
        seen += page["Keys"]
        pages += 1
        if page["Cursor"] == "":
            break
        assert page["Cursor"] == page["Keys"][-1]
        cursor = page["Cursor"]
    assert seen == keys and pages == 5
    assert len(call(c, "EdgeKVList", ZoneId=zone, Namespace=name)["Keys"]) == 20  # default Limit
    assert call(c, "EdgeKVList", ZoneId=zone, Namespace=name, Limit=1000)["Keys"] == keys


def test_key_and_value_limits(c, ns):
    zone, name = ns
    put = lambda **kw: call(c, "EdgeKVPut", ZoneId=zone, Namespace=name, **kw)  # noqa: E731
    put(Key="键" * 512, Value="v")  # 512 characters (1536 bytes) is fine
    assert code_of(c, "EdgeKVPut", ZoneId=zone, Namespace=name, Key="键" * 513, Value="v") == "InvalidParameterValue"
    assert code_of(c, "EdgeKVPut", ZoneId=zone, Namespace=name, Key="", Value="v") == "InvalidParameterValue"
    assert code_of(c, "EdgeKVPut", ZoneId=zone, Namespace=name, Key="k", Value="") == "InvalidParameterValue"
    put(Key="max-ascii", Value="x" * 1048576)
    assert code_of(c, "EdgeKVPut", ZoneId=zone, Namespace=name, Key="k", Value="x" * 1048577) == "InvalidParameterValue"
    # 1 MB is measured on the decoded value: 349525 three-byte characters = 1048575 bytes, sent
    # by the Python SDK as a ~2 MB body of \\uXXXX escapes.
    put(Key="max-cjk", Value="值" * 349525)
    assert code_of(c, "EdgeKVPut", ZoneId=zone, Namespace=name, Key="k", Value="值" * 349526) == "InvalidParameterValue"
    got = call(c, "EdgeKVGet", ZoneId=zone, Namespace=name, Keys=["max-ascii", "max-cjk", "键" * 512])["Data"]
    assert [len(d["Value"]) for d in got] == [1048576, 349525, 1]


def test_batch_key_counts(c, ns):
    zone, name = ns
    twenty = [f"k{i}" for i in range(20)]
    assert len(call(c, "EdgeKVGet", ZoneId=zone, Namespace=name, Keys=twenty)["Data"]) == 20
    call(c, "EdgeKVDelete", ZoneId=zone, Namespace=name, Keys=twenty)
    for action in ("EdgeKVGet", "EdgeKVDelete"):
        assert code_of(c, action, ZoneId=zone, Namespace=name, Keys=twenty + ["k20"]) == "InvalidParameter.KeysTooMany"
        assert code_of(c, action, ZoneId=zone, Namespace=name, Keys=[]) == "InvalidParameterValue"
        assert code_of(c, action, ZoneId=zone, Namespace=name, Keys=["ok", "x" * 513]) == "InvalidParameterValue"


def test_list_parameter_errors(c, ns):
    zone, name = ns
    assert code_of(c, "EdgeKVList", ZoneId=zone, Namespace=name, Prefix="") == "InvalidParameterValue"
    assert code_of(c, "EdgeKVList", ZoneId=zone, Namespace=name, Limit=1001) == "InvalidParameterValue"
    assert code_of(c, "EdgeKVList", ZoneId=zone, Namespace=name, Limit=0) == "InvalidParameterValue"
    assert call(c, "EdgeKVList", ZoneId=zone, Namespace=name, Prefix="zz", Cursor="zzz")["Keys"] == []


def test_missing_namespace_for_every_key_action(c):
    zone = unique("zone")
    for action, extra in [("EdgeKVPut", {"Key": "k", "Value": "v"}), ("EdgeKVGet", {"Keys": ["k"]}),
                          ("EdgeKVDelete", {"Keys": ["k"]}), ("EdgeKVList", {})]:
        assert code_of(c, action, ZoneId=zone, Namespace="nope", **extra) == "ResourceUnavailable.NamespaceNotFound"


def test_strict_key_mode(make_kvmux):
    server = make_kvmux(extra_toml="[tencent]\nstrict_keys = true\n")
    c = teo(server)
    call(c, "CreateEdgeKVNamespace", ZoneId="z", Namespace="ns")
    call(c, "EdgeKVPut", ZoneId="z", Namespace="ns", Key="Az09_-", Value="v")
    for bad in ("a/b", "a.b", "键", "a b"):
        assert code_of(c, "EdgeKVPut", ZoneId="z", Namespace="ns", Key=bad, Value="v") == "InvalidParameterValue"


def test_concurrent_writers_lose_nothing(kvmux, ns):
    from concurrent.futures import ThreadPoolExecutor

    zone, name = ns

    def writer(w):
        client = teo(kvmux)  # one client per thread, as applications do
        for i in range(20):
            call(client, "EdgeKVPut", ZoneId=zone, Namespace=name, Key=f"w{w}-{i:02d}", Value="x" * 10)
        return w

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sorted(pool.map(writer, range(8))) == list(range(8))
    c = teo(kvmux)
    keys = call(c, "EdgeKVList", ZoneId=zone, Namespace=name, Limit=1000)["Keys"]
    assert keys == sorted(f"w{w}-{i:02d}" for w in range(8) for i in range(20))
    [n] = [n for n in call(c, "DescribeEdgeKVNamespaces", ZoneId=zone)["KVNamespaces"] if n["Namespace"] == name]
    assert n["CapacityUsed"] == 160 * (len("w0-00") + 10)


def test_data_survives_a_restart(make_kvmux, tmp_path):
    data_dir = str(tmp_path / "data")
    first = make_kvmux(data_dir=data_dir)
    c = teo(first)
    call(c, "CreateEdgeKVNamespace", ZoneId="z", Namespace="durable", Remark="kept")
    call(c, "EdgeKVPut", ZoneId="z", Namespace="durable", Key="k", Value="值", ExpirationTTL=3600)
    first.stop()
    second = make_kvmux(data_dir=data_dir)
    c = teo(second)
    [n] = call(c, "DescribeEdgeKVNamespaces", ZoneId="z")["KVNamespaces"]
    assert (n["Namespace"], n["Remark"]) == ("durable", "kept")
    [d] = call(c, "EdgeKVGet", ZoneId="z", Namespace="durable", Keys=["k"])["Data"]
    assert d["Value"] == "值" and ISO_Z.match(d["Expiration"])


# ------------------------------------------------------------------------------------------- expiry

def iso_to_unix(s: str) -> int:
    return int(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp())


def test_ttl_and_absolute_expiry(make_kvmux):
    server = make_kvmux()
    c = teo(server)
    call(c, "CreateEdgeKVNamespace", ZoneId="z", Namespace="ttl")
    kw = {"ZoneId": "z", "Namespace": "ttl"}
    now = int(time.time())
    call(c, "EdgeKVPut", **kw, Key="ttl", Value="v", ExpirationTTL=60)
    call(c, "EdgeKVPut", **kw, Key="abs", Value="v", Expiration=now + 3600)
    call(c, "EdgeKVPut", **kw, Key="both", Value="v", Expiration=now + 86400, ExpirationTTL=120)
    call(c, "EdgeKVPut", **kw, Key="forever", Value="v")
    data = {d["Key"]: d for d in call(c, "EdgeKVGet", **kw, Keys=["ttl", "abs", "both", "forever"])["Data"]}
    assert abs(iso_to_unix(data["ttl"]["Expiration"]) - (now + 60)) <= 2
    assert iso_to_unix(data["abs"]["Expiration"]) == now + 3600
    assert abs(iso_to_unix(data["both"]["Expiration"]) - (now + 120)) <= 2  # the TTL wins
    assert data["forever"]["Expiration"] == ""

    server.advance(61)
    data = {d["Key"]: d["Value"] for d in call(c, "EdgeKVGet", **kw, Keys=["ttl", "abs", "both"])["Data"]}
    assert data == {"ttl": "", "abs": "v", "both": "v"}
    assert call(c, "EdgeKVList", **kw)["Keys"] == ["abs", "both", "forever"]
    server.advance(3600)
    assert call(c, "EdgeKVList", **kw)["Keys"] == ["forever"]

    engine_now = now + 61 + 3600
    assert code_of(c, "EdgeKVPut", **kw, Key="k", Value="v", ExpirationTTL=59) == "InvalidParameterValue"
    assert code_of(c, "EdgeKVPut", **kw, Key="k", Value="v", Expiration=engine_now + 30) == "InvalidParameterValue"
    # The signature window uses the wall clock, so signing still works after advancing an hour.
    call(c, "EdgeKVPut", **kw, Key="k", Value="v", Expiration=engine_now + 120)


# --------------------------------------------------------------------------- signatures and styles

@pytest.mark.parametrize("style", [
    {"sign_method": "HmacSHA1"},
    {"sign_method": "HmacSHA256"},
    {"req_method": "GET"},
    {"sign_method": "HmacSHA256", "req_method": "GET"},
    {"language": "en-US"},
    {"token": "temporary-session-token"},
    {"unsigned_payload": True},
])
def test_every_signing_style_of_the_sdk(kvmux, c, ns, style):
    zone, name = ns
    other = teo(kvmux, **style)
    # Characters that query strings and form bodies must escape: the GET and legacy styles
    # flatten every parameter into one, and sign the raw or decoded form of it.
    odd = "a b&c=d+e%/?键#"
    call(other, "EdgeKVPut", ZoneId=zone, Namespace=name, Key=odd, Value="1 & 2 = 3+")
    call(other, "EdgeKVPut", ZoneId=zone, Namespace=name, Key="b", Value="二")
    got = call(other, "EdgeKVGet", ZoneId=zone, Namespace=name, Keys=["b", odd])["Data"]
    assert [d["Value"] for d in got] == ["二", "1 & 2 = 3+"]
    listed = call(other, "EdgeKVList", ZoneId=zone, Namespace=name, Prefix="a b&", Limit=5)
    assert listed["Keys"] == [odd]
    call(other, "EdgeKVDelete", ZoneId=zone, Namespace=name, Keys=[odd, "b"])
    assert call(c, "EdgeKVList", ZoneId=zone, Namespace=name)["Keys"] == []
    bad = teo(kvmux, secret_key="wrong", **style)
    assert code_of(bad, "EdgeKVList", ZoneId=zone, Namespace=name) == "AuthFailure.SignatureFailure"


def test_endpoint_with_scheme_signs_the_host_with_it(kvmux, ns):
    # HttpProfile(endpoint="http://...") without protocol sends and signs Host: http://127.0.0.1:PORT
    # (https://... under KVMUX_TEST_TLS)
    zone, name = ns
    c = teo(kvmux, endpoint=f"{SCHEME}://" + kvmux.endpoint)
    call(c, "EdgeKVPut", ZoneId=zone, Namespace=name, Key="k", Value="v")
    assert call(c, "EdgeKVList", ZoneId=zone, Namespace=name)["Keys"] == ["k"]


def test_auth_failures_each_have_their_own_code(kvmux):
    zone = unique("zone")
    assert code_of(teo(kvmux, secret_key="wrong"), "DescribeEdgeKVNamespaces", ZoneId=zone) == \
        "AuthFailure.SignatureFailure"
    assert code_of(teo(kvmux, secret_id="AKIDunknown"), "DescribeEdgeKVNamespaces", ZoneId=zone) == \
        "AuthFailure.SecretIdNotFound"
    body = json.dumps({"ZoneId": zone}).encode()
    ok = tc3_raw(kvmux, "DescribeEdgeKVNamespaces", body)
    assert ok[2]["Response"]["TotalCount"] == 0
    stale = tc3_raw(kvmux, "DescribeEdgeKVNamespaces", body, timestamp=int(time.time()) - 301)
    assert raw_code(stale) == "AuthFailure.SignatureExpire"
    future = tc3_raw(kvmux, "DescribeEdgeKVNamespaces", body, timestamp=int(time.time()) + 400)
    assert raw_code(future) == "AuthFailure.SignatureExpire"
    mangled = tc3_raw(kvmux, "DescribeEdgeKVNamespaces", body, authorization="TC3-HMAC-SHA256 garbage")
    assert raw_code(mangled) == "AuthFailure.InvalidAuthorization"


def test_auth_modes_off_and_log_serve_bad_signatures(make_kvmux):
    for mode in ("off", "log"):
        server = make_kvmux(extra_toml=f'[auth]\nmode = "{mode}"\n')
        c = teo(server, secret_key="wrong")
        call(c, "CreateEdgeKVNamespace", ZoneId="z", Namespace="ns")
        call(c, "EdgeKVPut", ZoneId="z", Namespace="ns", Key="k", Value="v")
        # The data belongs to the key's account: the correct key sees it.
        got = call(teo(server), "EdgeKVGet", ZoneId="z", Namespace="ns", Keys=["k"])
        assert got["Data"][0]["Value"] == "v", mode


def test_accounts_are_isolated(make_kvmux):
    creds = "\n".join(
        f'[[credentials]]\ndialect = "tencent"\nid = "{i}"\nsecret = "s-{i}"\naccount = "{a}"\n'
        for i, a in [("AKIDalice", "alice"), ("AKIDbob", "bob")])
    server = make_kvmux(credentials_toml=creds)
    alice = teo(server, secret_id="AKIDalice", secret_key="s-AKIDalice")
    bob = teo(server, secret_id="AKIDbob", secret_key="s-AKIDbob")
    call(alice, "CreateEdgeKVNamespace", ZoneId="z", Namespace="shared-name")
    assert call(bob, "DescribeEdgeKVNamespaces", ZoneId="z")["TotalCount"] == 0
    assert code_of(bob, "EdgeKVList", ZoneId="z", Namespace="shared-name") == "ResourceUnavailable.NamespaceNotFound"
    assert code_of(teo(server), "DescribeEdgeKVNamespaces", ZoneId="z") == "AuthFailure.SecretIdNotFound"


# ------------------------------------------------------------------------------ protocol-level errors

def test_invalid_action_and_version(kvmux):
    assert error_of(common(kvmux).call_json, "EdgeKVScan", {"ZoneId": "z"}).get_code() == "InvalidAction"
    assert error_of(common(kvmux, "2021-01-01").call_json, "EdgeKVGet",
                    {"ZoneId": "z", "Namespace": "n", "Keys": ["k"]}).get_code() == "NoSuchVersion"


def test_parameter_errors(kvmux, ns):
    zone, name = ns
    cc = common(kvmux)
    code = lambda action, params: error_of(cc.call_json, action, params).get_code()  # noqa: E731
    assert code("EdgeKVPut", {"ZoneId": zone, "Namespace": name, "Key": "k"}) == "MissingParameter"
    assert code("EdgeKVGet", {"Namespace": name, "Keys": ["k"]}) == "MissingParameter"
    assert code("CreateEdgeKVNamespace", {"ZoneId": zone}) == "MissingParameter"
    assert code("EdgeKVPut", {"ZoneId": zone, "Namespace": name, "Key": 5, "Value": "v"}) == "InvalidParameter"
    assert code("EdgeKVGet", {"ZoneId": zone, "Namespace": name, "Keys": "k"}) == "InvalidParameter"
    assert code("EdgeKVList", {"ZoneId": zone, "Namespace": name, "Limit": "10"}) == "InvalidParameter"
    assert code("EdgeKVPut", {"ZoneId": zone, "Namespace": name, "Key": "k", "Value": "v",
                              "ExpirationTTL": 1.5}) == "InvalidParameter"
    assert code("EdgeKVPut", {"ZoneId": zone, "Namespace": name, "Key": "k", "Value": "v",
                              "Bogus": 1}) == "UnknownParameter"
    assert code("EdgeKVGet", {"ZoneId": "", "Namespace": name, "Keys": ["k"]}) == "InvalidParameterValue"
    for body in (b"{not json", b"[1,2]", b'"str"'):
        assert raw_code(tc3_raw(kvmux, "EdgeKVGet", body)) == "InvalidParameter"


def test_every_reply_is_http_200_json_with_a_uuid_request_id(kvmux):
    body = json.dumps({"ZoneId": "z", "Namespace": "absent", "Keys": ["k"]}).encode()
    status, headers, reply = tc3_raw(kvmux, "EdgeKVGet", body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert reply["Response"]["Error"] == {
        "Code": "ResourceUnavailable.NamespaceNotFound",
        "Message": "The KV namespace `absent` does not exist.",
    }
    assert UUID4.match(reply["Response"]["RequestId"])
    # Unsigned junk aimed at the Tencent dialect still gets the envelope, never a 4xx/5xx.
    request = urllib.request.Request(kvmux.url + "/", data=b"{}", method="POST",
                                     headers={"X-TC-Action": "EdgeKVGet", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "application/json"
        assert json.loads(r.read())["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"


def test_vendor_rate_limit(make_kvmux):
    server = make_kvmux(extra_toml="[limits]\nvendor_rate_limits = true\n")
    c = teo(server)
    outcomes = burst(lambda _: call(c, "DescribeEdgeKVNamespaces", ZoneId="z"), 60)
    codes = [o.get_code() if isinstance(o, TencentCloudSDKException) else
             ("ok" if not isinstance(o, Exception) else repr(o)) for o in outcomes]
    assert "RequestLimitExceeded" in codes
    assert codes.count("ok") >= 20
    assert set(codes) <= {"ok", "RequestLimitExceeded"}


# ------------------------------------------------------------------------------------------- tccli

def tccli(server, home, *args):
    exe = shutil.which("tccli", path=os.path.dirname(sys.executable)) or shutil.which("tccli")
    assert exe, "tccli is installed by tests/sdk/requirements-tencent.txt"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HOME=str(home), TENCENTCLOUD_SECRET_ID=SECRET_ID, TENCENTCLOUD_SECRET_KEY=SECRET_KEY)
    return subprocess.run(
        [exe, "teo", *args, "--region", "ap-guangzhou", "--endpoint", server.url],
        env=env, capture_output=True, text=True, timeout=120,
    )


@tls_only_skip("tccli has no CA option: its SDK verifies against certifi's bundle only, which a "
               "gateway's self-signed certificate is not in (and the venv's certifi is not ours to edit)")
def test_tccli_put_get_list_delete(kvmux, c, ns, tmp_path):
    zone, name = ns
    base = ["--ZoneId", zone, "--Namespace", name]
    for key, value in [("hello", "world"), ("hello1", "世界")]:
        out = tccli(kvmux, tmp_path, "EdgeKVPut", *base, "--Key", key, "--Value", value)
        assert out.returncode == 0, out.stderr
        assert UUID4.match(json.loads(out.stdout)["RequestId"])
    out = tccli(kvmux, tmp_path, "EdgeKVGet", *base, "--Keys", '["hello1", "missing"]')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Data"] == [
        {"Key": "hello1", "Value": "世界", "Expiration": ""},
        {"Key": "missing", "Value": "", "Expiration": ""},
    ]
    out = tccli(kvmux, tmp_path, "EdgeKVList", *base, "--Prefix", "he", "--Limit", "1")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Keys"] == ["hello"] and json.loads(out.stdout)["Cursor"] == "hello"
    out = tccli(kvmux, tmp_path, "EdgeKVDelete", *base, "--Keys", '["hello"]')
    assert out.returncode == 0, out.stderr
    assert call(c, "EdgeKVList", ZoneId=zone, Namespace=name)["Keys"] == ["hello1"]
    # An error exits 255 with the Tencent code on stderr.
    out = tccli(kvmux, tmp_path, "EdgeKVList", "--ZoneId", zone, "--Namespace", "absent-ns")
    assert out.returncode == 255
    assert "ResourceUnavailable.NamespaceNotFound" in out.stderr + out.stdout
