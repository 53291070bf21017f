"""The kvmux wheel as a user gets it: the `kvmux` and `kvmux_server` fixtures of its pytest plugin
(no conftest here), the Server API and the SDK client factories, driven through the vendors'
own Python SDKs (tests/sdk/requirements-*.txt).

`scripts/test.sh package` runs this file in a fresh venv holding only the wheel from dist/, pytest
and those SDKs, with KVMUX_BIN unset: `kvmux` and its binary come from the wheel, not from this
source tree (test_the_wheel_is_what_runs checks that).

Tests that rely on order (isolation: data from one test is gone in the next) are consecutive
functions; pytest runs a file's tests in order.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

import kvmux as kvmux_package

from alibabacloud_dcdn20180115 import models as dcdn_models
from alibabacloud_esa20240910 import models as esa_models
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkkvs.v1 import (CreateTableRequest, CreateTableRequestBody, Field, GetKvRequest,
                                  GetKvRequestBody, PrimaryKeySchema, PutKvRequest,
                                  PutKvRequestBody)
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.teo.v20220901 import models as teo_models

ZONE = {"ZoneId": "zone-1"}


@pytest.fixture(autouse=True)
def scratch_home(tmp_path, monkeypatch):
    """The Huawei SDK writes ~/.huaweicloud/application_id; keep it out of the real HOME."""
    monkeypatch.setenv("HOME", str(tmp_path))


def teo(client, action, **params):
    request = getattr(teo_models, action + "Request")()
    request.from_json_string(json.dumps({**ZONE, **params}))
    return json.loads(getattr(client, action)(request).to_json_string())


def huawei_table(client, store, table="users", ttl=None):
    body = CreateTableRequestBody(table_name=table, primary_key_schema=PrimaryKeySchema(
        shard_key_fields=[Field(name="id")]))
    if ttl is not None:
        from huaweicloudsdkkvs.v1 import TtlSpecification

        body.ttl_specification = TtlSpecification(enable=True, expire_after_seconds=ttl)
    client.create_table(CreateTableRequest(store_name=store, body=body))


def huawei_put(client, store, doc, table="users"):
    client.put_kv(PutKvRequest(store_name=store, body=PutKvRequestBody(table_name=table, kv_doc=doc)))


def huawei_get(client, store, key, table="users"):
    return client.get_kv(GetKvRequest(store_name=store, body=GetKvRequestBody(
        table_name=table, primary_key={"id": key}))).kv_doc


def aliyun_code(excinfo):
    return getattr(excinfo.value, "code", None)


# ------------------------------------------------------------------------------ the wheel


def test_the_wheel_is_what_runs(kvmux):
    """The package is the installed one and, without KVMUX_BIN, runs the binary the wheel put
    beside this interpreter."""
    assert "site-packages" in kvmux_package.__file__, kvmux_package.__file__
    if not os.environ.get("KVMUX_BIN"):
        assert kvmux.binary == os.path.join(os.path.dirname(sys.executable), "kvmux")
    assert kvmux.health()["status"] == "ok"
    assert kvmux.url == f"http://{kvmux.host}" and kvmux.host.startswith("127.0.0.1:")
    assert kvmux.pid == kvmux.proc.pid
    assert kvmux.credentials("tencent") == ("AKIDkvmuxdev", "kvmuxdevsecret")
    assert kvmux.credentials("esa") == kvmux.credentials("dcdn") == ("LTAIkvmuxdev", "kvmuxdevsecret")


# ---------------------------------------------------------------- all three vendors' SDKs


def test_tencent_create_put_get(kvmux):
    client = kvmux.tencent_client()
    teo(client, "CreateEdgeKVNamespace", Namespace="ns")
    teo(client, "EdgeKVPut", Namespace="ns", Key="greeting", Value="hello")
    assert teo(client, "EdgeKVGet", Namespace="ns", Keys=["greeting"])["Data"][0]["Value"] == "hello"


def test_esa_create_put_get(kvmux):
    client = kvmux.esa_client()
    client.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace="ns"))
    client.put_kv(esa_models.PutKvRequest(namespace="ns", key="greeting", value="hello"))
    assert client.get_kv(esa_models.GetKvRequest(namespace="ns", key="greeting")).body.value == "hello"


def test_dcdn_create_put_get(kvmux):
    client = kvmux.dcdn_client()
    client.put_dcdn_kv_namespace(dcdn_models.PutDcdnKvNamespaceRequest(namespace="ns", description="d"))
    client.put_dcdn_kv(dcdn_models.PutDcdnKvRequest(namespace="ns", key="greeting", value="hello"))
    assert client.get_dcdn_kv(dcdn_models.GetDcdnKvRequest(namespace="ns", key="greeting")).body.value == "hello"


def test_huawei_create_put_get(kvmux):
    client = kvmux.huawei_client("mystore")
    huawei_table(client, "mystore")
    huawei_put(client, "mystore", {"id": "u1", "greeting": "hello"})
    assert huawei_get(client, "mystore", "u1") == {"id": "u1", "greeting": "hello"}


def test_huawei_routing_ignores_and_keeps_the_environment(kvmux, monkeypatch):
    """The Huawei client reaches the gateway whatever the environment's proxy settings say, and
    building it changes nothing in os.environ."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "*")
    before = dict(os.environ)
    client = kvmux.huawei_client()
    assert dict(os.environ) == before
    huawei_table(client, "envstore")
    huawei_put(client, "envstore", {"id": "k", "v": 1})
    assert huawei_get(client, "envstore", "k") == {"id": "k", "v": 1}
    with pytest.raises(ValueError, match="3 to 63"):
        kvmux.huawei_client("S")


# ------------------------------------------------- isolation: each test starts clean


def test_isolation_first_test_writes_everywhere(kvmux):
    teo(kvmux.tencent_client(), "CreateEdgeKVNamespace", Namespace="shared")
    teo(kvmux.tencent_client(), "EdgeKVPut", Namespace="shared", Key="k", Value="from the first test")
    esa = kvmux.esa_client()
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace="shared"))
    esa.put_kv(esa_models.PutKvRequest(namespace="shared", key="k", value="from the first test"))
    huawei = kvmux.huawei_client()
    huawei_table(huawei, "shared")
    huawei_put(huawei, "shared", {"id": "k"})
    kvmux.checkpoint("left-behind")
    kvmux.add_credentials("aliyun", "LTAIleftbehind", "s3cret", "other")
    kvmux.admin("POST", "/_kvmux/faults", {"dialect": "tencent", "operation": "EdgeKVList",
                                            "probability": 1.0, "error": "throttle"})


def test_isolation_next_test_sees_none_of_it(kvmux):
    client = kvmux.tencent_client()
    # The namespace is gone: creating it again succeeds, and the key is not there.
    teo(client, "CreateEdgeKVNamespace", Namespace="shared")
    assert teo(client, "EdgeKVGet", Namespace="shared", Keys=["k"])["Data"][0]["Value"] == ""
    assert teo(client, "EdgeKVList", Namespace="shared")["Keys"] == []  # the fault rule is gone
    esa = kvmux.esa_client()
    with pytest.raises(Exception) as e:
        esa.get_kv(esa_models.GetKvRequest(namespace="shared", key="k"))
    assert aliyun_code(e) == "InvalidNameSpace.NotFound", e.value
    huawei = kvmux.huawei_client()
    huawei_table(huawei, "shared")  # would be refused if the table still existed
    with pytest.raises(ClientRequestException):
        huawei_get(huawei, "shared", "k")
    names = [c["name"] for c in kvmux.admin("GET", "/_kvmux/checkpoints")["checkpoints"]]
    assert "left-behind" not in names
    ids = [c["id"] for c in kvmux.admin("GET", "/_kvmux/credentials")["credentials"]]
    assert "LTAIleftbehind" not in ids and "LTAIkvmuxdev" in ids


# ---------------------------------------------------------- checkpoints, clock, credentials


def test_checkpoint_and_restore(kvmux):
    client = kvmux.tencent_client()
    teo(client, "CreateEdgeKVNamespace", Namespace="ns")
    teo(client, "EdgeKVPut", Namespace="ns", Key="k", Value="seeded")
    assert kvmux.checkpoint("seeded")["name"] == "seeded"
    teo(client, "EdgeKVPut", Namespace="ns", Key="k", Value="changed")
    teo(client, "EdgeKVPut", Namespace="ns", Key="extra", Value="x")
    kvmux.restore("seeded")
    got = teo(client, "EdgeKVGet", Namespace="ns", Keys=["k", "extra"])["Data"]
    assert [d["Value"] for d in got] == ["seeded", ""]


def test_advance_clock_expires_ttls_in_every_dialect(kvmux):
    tencent = kvmux.tencent_client()
    teo(tencent, "CreateEdgeKVNamespace", Namespace="ttl")
    teo(tencent, "EdgeKVPut", Namespace="ttl", Key="short", Value="v", ExpirationTTL=60)
    teo(tencent, "EdgeKVPut", Namespace="ttl", Key="forever", Value="v")
    esa = kvmux.esa_client()
    esa.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace="ttl"))
    esa.put_kv(esa_models.PutKvRequest(namespace="ttl", key="short", value="v", expiration_ttl=60))
    huawei = kvmux.huawei_client()
    huawei_table(huawei, "ttlstore", table="sessions", ttl=60)
    huawei_put(huawei, "ttlstore", {"id": "s1"}, table="sessions")

    before = kvmux.health()["now"]
    assert kvmux.advance_clock(61) >= before + 61

    got = teo(tencent, "EdgeKVGet", Namespace="ttl", Keys=["short", "forever"])["Data"]
    assert [d["Value"] for d in got] == ["", "v"]
    with pytest.raises(Exception) as e:
        esa.get_kv(esa_models.GetKvRequest(namespace="ttl", key="short"))
    assert aliyun_code(e) == "InvalidKey.NotFound", e.value
    with pytest.raises(ClientRequestException) as e:
        huawei_get(huawei, "ttlstore", "s1", table="sessions")
    assert e.value.error_code == "KVS.00001016"


def test_the_clock_is_back_in_the_next_test(kvmux):
    """The previous test moved the engine clock a minute ahead; clean() restored it."""
    assert abs(kvmux.health()["now"] - time.time()) < 30


def test_add_credentials_reach_their_own_account(kvmux):
    kvmux.add_credentials("aliyun", "LTAItenant1", "tenant-secret", "t1")
    tenant = kvmux.esa_client(credentials=("LTAItenant1", "tenant-secret"))
    tenant.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace="mine"))
    tenant.put_kv(esa_models.PutKvRequest(namespace="mine", key="k", value="t1's"))
    with pytest.raises(Exception) as e:  # the dev account has no such namespace
        kvmux.esa_client().get_kv(esa_models.GetKvRequest(namespace="mine", key="k"))
    assert aliyun_code(e) == "InvalidNameSpace.NotFound", e.value
    kvmux.reset(account="t1")
    with pytest.raises(Exception) as e:
        tenant.get_kv(esa_models.GetKvRequest(namespace="mine", key="k"))
    assert aliyun_code(e) == "InvalidNameSpace.NotFound", e.value


def test_reset_with_a_scope(kvmux):
    client = kvmux.tencent_client()
    for ns in ("keep", "drop"):
        teo(client, "CreateEdgeKVNamespace", Namespace=ns)
        teo(client, "EdgeKVPut", Namespace=ns, Key="k", Value=ns)
    reply = kvmux.reset(dialect="tencent", container="drop")
    assert reply["removed"]["items"] == 1
    assert teo(client, "EdgeKVGet", Namespace="keep", Keys=["k"])["Data"][0]["Value"] == "keep"
    with pytest.raises(kvmux_package.KvmuxError) as e:
        kvmux.reset(dialect="nosuch")
    assert e.value.status == 400


def test_wrong_secret_is_refused_as_the_vendor_would(kvmux):
    client = kvmux.tencent_client(credentials=("AKIDkvmuxdev", "wrong"))
    with pytest.raises(TencentCloudSDKException) as e:
        teo(client, "CreateEdgeKVNamespace", Namespace="ns")
    assert e.value.code == "AuthFailure.SignatureFailure"


# ------------------------------------------------------------- Server on its own, plugin


def test_server_as_a_context_manager():
    with kvmux_package.Server() as server:
        proc = server.proc
        assert server.health()["status"] == "ok"
        teo(server.tencent_client(), "CreateEdgeKVNamespace", Namespace="own")
    assert proc.poll() is not None  # stopped on exit
    assert server.stop() is None or True  # a second stop does nothing


def test_server_on_a_fresh_redb_dir_and_with_a_config():
    config = textwrap.dedent("""\
        [dialects]
        tencent = true
        aliyun = false
        huawei = false

        [[credentials]]
        dialect = "tencent"
        id = "AKIDconfigured"
        secret = "configured-secret"
        account = "dev"
        """)
    with kvmux_package.Server(config=config, storage="redb") as server:
        assert server.health()["dialects"] == ["tencent"]
        client = server.tencent_client(credentials=("AKIDconfigured", "configured-secret"))
        teo(client, "CreateEdgeKVNamespace", Namespace="ns")
        server.checkpoint("on-redb")


def test_missing_sdk_names_the_package(kvmux, monkeypatch):
    monkeypatch.setitem(sys.modules, "tencentcloud.teo.v20220901", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install tencentcloud-sdk-python-teo"):
        kvmux.tencent_client()
    monkeypatch.setitem(sys.modules, "huaweicloudsdkkvs.v1", None)
    with pytest.raises(ImportError, match="pip install huaweicloudsdkkvs"):
        kvmux.huawei_client()


def test_a_missing_binary_says_what_to_do(monkeypatch):
    monkeypatch.setenv("KVMUX_BIN", "/nonexistent/kvmux")
    with pytest.raises(kvmux_package.KvmuxError, match="not an executable"):
        kvmux_package.Server()


def test_kvmux_binary_option_and_env_choose_the_binary(tmp_path):
    """`--kvmux-binary` and KVMUX_BIN reach the fixtures (a copy of the binary stands in for
    another build), in a pytest run of its own."""
    real = kvmux_package.find_binary()
    other = tmp_path / "other-kvmux"
    other.symlink_to(real)
    (tmp_path / "test_choice.py").write_text(textwrap.dedent("""\
        import os

        def test_binary(kvmux):
            assert kvmux.binary == os.environ["EXPECTED_KVMUX"]
            assert kvmux.health()["status"] == "ok"
        """))
    env = {k: v for k, v in os.environ.items() if k != "KVMUX_BIN"}
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    for extra_args, extra_env in (([f"--kvmux-binary={other}"], {}), ([], {"KVMUX_BIN": str(other)})):
        run = subprocess.run(base + extra_args, env={**env, **extra_env, "EXPECTED_KVMUX": str(other)},
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr


def test_the_readme_example_runs_as_pasted(tmp_path):
    """README.md's ten-line pytest example (the python block that starts `# test_greeting.py`),
    run by pytest on its own with this venv's plugin, so the example cannot drift."""
    readme = os.path.join(os.path.dirname(__file__), "..", "..", "..", "README.md")
    if not os.path.exists(readme):
        pytest.skip("not run from a kvmux checkout")
    with open(readme, encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(# test_greeting\.py.*?)```", f.read(), re.S)
    assert len(blocks) == 1, "README.md should have one python block starting '# test_greeting.py'"
    assert len([line for line in blocks[0].splitlines() if line.strip()]) <= 10  # ten lines
    (tmp_path / "test_greeting.py").write_text(blocks[0])
    env = {**{k: v for k, v in os.environ.items() if k != "KVMUX_BIN"}, "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout + run.stderr
