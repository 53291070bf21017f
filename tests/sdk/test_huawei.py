"""Real-SDK tests for the Huawei KVS dialect: the unmodified `huaweicloudsdkkvs` client drives all
14 operations and the error paths against the kvmux binary.

Recipe (spec §8.2 A): the SDK puts the store in the host (`http://<store>.127.0.0.1:PORT`), which
does not resolve, so HTTP_PROXY points at kvmux and the gateway receives absolute-form requests
with `Host: <store>.127.0.0.1:PORT`. HOME is a scratch dir because the SDK writes
~/.huaweicloud/application_id the first time a client is built.

Under KVMUX_TEST_TLS=1 the SDK uses https end to end instead: endpoint https://kvs.localhost:PORT,
so requests go to `https://<store>.kvs.localhost:PORT`, which the gateway's certificate covers and
which resolves to 127.0.0.1 as RFC 6761 says `.localhost` names do (this machine's resolver does
not, so the test process resolves them itself; see `localhost_names_resolve`). No proxy then.
"""

import socket

import datetime
import uuid

import bson
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, ServerResponseException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.signer.algorithm import SigningAlgorithm
from huaweicloudsdkkvs.v1 import *  # noqa: F401,F403 (the SDK's documented import style)

from conftest import CA_BUNDLE, DEV_IDS, DEV_SECRET, HUAWEI_TLS_HOST, TLS, tls_only_skip

AK = DEV_IDS["huawei"]


def localhost_names_resolve(monkeypatch):
    """Resolves `*.localhost` to 127.0.0.1 in this process, as RFC 6761 §6.3 has it (and as
    systemd-resolved, curl and browsers do); glibc with this machine's nsswitch does not."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def sdk_env(kvmux, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    if TLS:
        localhost_names_resolve(monkeypatch)
    else:
        route_through(monkeypatch, kvmux)


def route_through(monkeypatch, server):
    """Send the SDK's requests (absolute-form, via HTTP_PROXY) to this gateway. Under TLS the
    endpoint itself names the gateway (see sdk_endpoint) and there is no proxy."""
    if not TLS:
        monkeypatch.setenv("HTTP_PROXY", server.url)
        monkeypatch.setenv("http_proxy", server.url)


def sdk_endpoint(server):
    """The endpoint the SDK is given: over plain HTTP `http://127.0.0.1:PORT` (reached through
    HTTP_PROXY), under TLS `https://kvs.localhost:PORT` (reached directly)."""
    if TLS:
        return f"https://{HUAWEI_TLS_HOST}:{server.port}"
    return f"http://{server.endpoint}"


def tls_config():
    """The SDK's default HTTP config, trusting CA_BUNDLE (the SDK's CA option; None over HTTP)."""
    config = HttpConfig.get_default_config()
    config.ssl_ca_cert = CA_BUNDLE
    return config


def make_client(server, ak=AK, sk=DEV_SECRET, algorithm=None):
    config = tls_config()
    if algorithm is not None:
        config.signing_algorithm = algorithm
    return (
        KvsClient.new_builder()
        .with_credentials(BasicCredentials(ak, sk, "kvmuxproject"))
        .with_endpoint(sdk_endpoint(server))
        .with_http_config(config)
        .build()
    )


@pytest.fixture
def client(kvmux):
    return make_client(kvmux)


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store():
    return unique("st")


def files_schema(name):
    return CreateTableRequestBody(
        table_name=name,
        primary_key_schema=PrimaryKeySchema(
            shard_key_fields=[Field(name="owner")], sort_key_fields=[Field(name="filename")]
        ),
        local_secondary_index_schema=[
            SecondaryIndex(index_name="by_size", sort_key_fields=[Field(name="size")], abstract_fields=["color"])
        ],
        global_secondary_index_schema=[
            GlobalSecondaryIndex(
                index_name="g_by_name",
                shard_key_fields=[Field(name="filename")],
                sort_key_fields=[Field(name="owner")],
                abstract_fields=["size"],
            )
        ],
    )


def create_files(client, store, name="files"):
    return client.create_table(CreateTableRequest(store_name=store, body=files_schema(name)))


def put(client, store, doc, table="files", condition=None):
    return client.put_kv(
        PutKvRequest(store_name=store, body=PutKvRequestBody(table_name=table, kv_doc=doc, condition_expression=condition))
    )


def get(client, store, key, table="files"):
    return client.get_kv(GetKvRequest(store_name=store, body=GetKvRequestBody(table_name=table, primary_key=key)))


def sfe(field, func, value=None, value_array=None):
    return ConditionExpression(
        single_field_expression=SingleFieldExpression(field=field, func=func, value=value, value_array=value_array)
    )


def error_of(call):
    with pytest.raises((ClientRequestException, ServerResponseException)) as info:
        call()
    return info.value


def seed(client, store):
    create_files(client, store)
    for owner, name, size in [("alice", "a.txt", 7), ("alice", "b.txt", 3), ("bob", "a.txt", 5), ("alice", "c.txt", 9)]:
        put(client, store, {"owner": owner, "filename": name, "size": size, "color": "red"})


def pairs(items):
    return [(i.kv_doc["owner"], i.kv_doc["filename"]) for i in items]


def test_check_health_and_list_store(client, store):
    assert client.check_health(CheckHealthRequest(body=CheckHealthRequestBody(version=1))).status_code == 200
    before = client.list_store(ListStoreRequest(body=ListStoreRequestBody(limit=25))).stores or []
    assert store not in before
    create_files(client, store)
    stores = []
    cursor = None
    while True:
        page = client.list_store(ListStoreRequest(body=ListStoreRequestBody(cursor_name=cursor, limit=2)))
        stores += page.stores
        if not page.cursor_name:
            break
        cursor = page.cursor_name
    assert store in stores
    assert stores == sorted(stores)


def test_table_lifecycle(client, store):
    created = create_files(client, store)
    assert created.table_name == "files"
    assert created.primary_key_schema.shard_key_fields[0].name == "owner"
    client.create_table(
        CreateTableRequest(
            store_name=store,
            body=CreateTableRequestBody(
                table_name="second", primary_key_schema=PrimaryKeySchema(shard_key_fields=[Field(name="id")])
            ),
        )
    )
    described = client.describe_table(DescribeTableRequest(store_name=store, body=DescribeTableRequestBody(table_name="files")))
    assert described.table_name == "files"
    assert described.run_time_info.table_info.table_status == "active"
    assert [i.index_name for i in described.local_secondary_index_schema] == ["by_size"]
    assert [i.index_name for i in described.global_secondary_index_schema] == ["g_by_name"]
    listed = client.list_table(ListTableRequest(store_name=store, body=ListTableRequestBody(limit=1)))
    assert listed.table_names == ["files"] and listed.cursor_name == "files"
    rest = client.list_table(ListTableRequest(store_name=store, body=ListTableRequestBody(cursor_name="files")))
    assert rest.table_names == ["second"] and not rest.cursor_name
    deleted = client.delete_table(DeleteTableRequest(store_name=store, body=DeleteTableRequestBody(table_name="second")))
    assert deleted.table_name == "second"
    e = error_of(lambda: client.describe_table(DescribeTableRequest(store_name=store, body=DescribeTableRequestBody(table_name="second"))))
    assert (e.status_code, e.error_code) == (404, "KVS.00001015")
    assert e.request_id
    e = error_of(lambda: create_files(client, store))
    assert (e.status_code, e.error_code) == (409, "KVS.00001020")


def test_put_get_keeps_types_and_numbers_address_by_value(client, store):
    create_files(client, store)
    doc = {
        "owner": "alice", "filename": "a.txt", "size": 7, "big": 2**40, "pi": 3.5, "raw": b"\x00\x01",
        "flag": True, "tags": ["x", 1], "nested": {"k": "v"}, "nul": None,
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5, 678000),
    }
    put(client, store, doc)
    got = get(client, store, {"owner": "alice", "filename": "a.txt"}).kv_doc
    assert got == doc
    assert list(got.keys()) == list(doc.keys())
    assert isinstance(got["big"], bson.Int64)
    client.create_table(
        CreateTableRequest(
            store_name=store,
            body=CreateTableRequestBody(table_name="nums", primary_key_schema=PrimaryKeySchema(shard_key_fields=[Field(name="id")])),
        )
    )
    put(client, store, {"id": 9, "v": "int32"}, table="nums")
    assert get(client, store, {"id": 9.0}, table="nums").kv_doc["v"] == "int32"
    assert get(client, store, {"id": bson.Int64(9)}, table="nums").kv_doc["v"] == "int32"


def test_update_and_delete_with_conditions(client, store):
    seed(client, store)
    key = {"owner": "alice", "filename": "a.txt"}
    client.update_kv(
        UpdateKvRequest(
            store_name=store,
            body=UpdateKvRequestBody(
                table_name="files",
                primary_key=key,
                condition_expression=sfe("size", "$eq", {"": 7}),
                update_fields=UpdateFields(set={"color": "blue", "tags": ["x"]}, add={"size": 1}, insert={"tags": "y"}, rmv=["gone"]),
            ),
        )
    )
    assert get(client, store, key).kv_doc == {"owner": "alice", "filename": "a.txt", "size": 8, "color": "blue", "tags": ["x", "y"]}

    e = error_of(lambda: client.update_kv(UpdateKvRequest(store_name=store, body=UpdateKvRequestBody(
        table_name="files", primary_key=key, condition_expression=sfe("size", "$gt", {"": 100}),
        update_fields=UpdateFields(set={"color": "green"})))))
    assert (e.status_code, e.error_code) == (400, "KVS.00005017")
    e = error_of(lambda: client.update_kv(UpdateKvRequest(store_name=store, body=UpdateKvRequestBody(
        table_name="files", primary_key=key, update_fields=UpdateFields(set={"filename": "z.txt"})))))
    assert e.error_code == "KVS.00001001"
    e = error_of(lambda: client.update_kv(UpdateKvRequest(store_name=store, body=UpdateKvRequestBody(
        table_name="files", primary_key=key, update_fields=UpdateFields(insert={"color": "x"})))))
    assert e.error_code == "KVS.00001001"
    e = error_of(lambda: client.update_kv(UpdateKvRequest(store_name=store, body=UpdateKvRequestBody(
        table_name="files", primary_key=key, update_fields=UpdateFields(delete={"tags": "absent"})))))
    assert e.error_code == "KVS.00001001"

    composed = ConditionExpression(composed_expression=ComposedExpression(logic="$or", expressions=[
        Expression(single_field_expression=SingleFieldExpression(field="color", func="$prefix", value={"": "bl"})),
        Expression(multi_field_expression=MultiFieldExpression(logic="$and", expressions=[
            SingleFieldExpression(field="size", func="$in", value_array=[{"": 1}, {"": 2}]),
        ])),
    ]))
    e = error_of(lambda: client.delete_kv(DeleteKvRequest(store_name=store, body=DeleteKvRequestBody(
        table_name="files", primary_key=key, condition_expression=sfe("color", "$nin", value_array=[{"": "blue"}])))))
    assert e.error_code == "KVS.00005017"
    client.delete_kv(DeleteKvRequest(store_name=store, body=DeleteKvRequestBody(table_name="files", primary_key=key, condition_expression=composed)))
    e = error_of(lambda: get(client, store, key))
    assert (e.status_code, e.error_code) == (404, "KVS.00001016")

    e = error_of(lambda: put(client, store, {"owner": "bob", "filename": "a.txt"},
                             condition=ConditionExpression(single_kv_expression=SingleKvExpression(func="not_exist"))))
    assert e.error_code == "KVS.00005017"
    e = error_of(lambda: put(client, store, {"owner": "bob", "filename": "a.txt"}, condition=sfe("size", "$like", {"": 1})))
    assert e.error_code == "KVS.00005016"


def test_scan_kv_paging_filter_and_indexes(client, store):
    seed(client, store)
    seen = []
    start = None
    while True:
        page = client.scan_kv(ScanKvRequest(store_name=store, body=ScanKvRequestBody(table_name="files", limit=3, start_key=start)))
        seen += pairs(page.returned_kv_items)
        if not page.cursor_key:
            break
        start = page.cursor_key
    assert seen == [("alice", "a.txt"), ("alice", "b.txt"), ("alice", "c.txt"), ("bob", "a.txt")]

    filtered = client.scan_kv(ScanKvRequest(store_name=store, body=ScanKvRequestBody(
        table_name="files", filter_expression=sfe("size", "$gte", {"": 7}))))
    assert pairs(filtered.returned_kv_items) == [("alice", "a.txt"), ("alice", "c.txt")]
    assert (filtered.returned_count, filtered.filtered_count) == (2, 2)

    ranged = client.scan_kv(ScanKvRequest(store_name=store, body=ScanKvRequestBody(
        table_name="files", start_key={"owner": "alice", "filename": "b.txt"}, end_key={"owner": "bob"})))
    assert pairs(ranged.returned_kv_items) == [("alice", "b.txt"), ("alice", "c.txt")]

    counted = client.scan_kv(ScanKvRequest(store_name=store, body=ScanKvRequestBody(table_name="files", limit=2, return_count_only=True)))
    assert counted.returned_count == 4 and counted.returned_kv_items == []

    by_name = client.scan_kv(ScanKvRequest(store_name=store, body=ScanKvRequestBody(table_name="files", hint_index_name="g_by_name")))
    assert pairs(by_name.returned_kv_items) == [("alice", "a.txt"), ("bob", "a.txt"), ("alice", "b.txt"), ("alice", "c.txt")]
    assert by_name.returned_kv_items[0].kv_doc == {"filename": "a.txt", "owner": "alice", "size": 7}

    sample = client.scan_kv(ScanKvRequest(store_name=store, body=ScanKvRequestBody(table_name="files", sample_segments_count=2)))
    assert len(sample.returned_segment_items) == 2
    assert sample.returned_segment_items[0].segment_min_key["owner"] == bson.MinKey()

    e = error_of(lambda: client.scan_kv(ScanKvRequest(store_name=store, body=ScanKvRequestBody(table_name="files", limit=101))))
    assert e.error_code == "KVS.00001001"


def test_scan_skey_kv_and_local_index(client, store):
    seed(client, store)
    page = client.scan_skey_kv(ScanSkeyKvRequest(store_name=store, body=ScanSkeyKvRequestBody(
        table_name="files", shard_key={"owner": "alice"}, start_sort_key={"filename": "b.txt"}, limit=1)))
    assert pairs(page.returned_kv_items) == [("alice", "b.txt")]
    assert page.cursor_sort_key == {"filename": "c.txt"}
    rest = client.scan_skey_kv(ScanSkeyKvRequest(store_name=store, body=ScanSkeyKvRequestBody(
        table_name="files", shard_key={"owner": "alice"}, start_sort_key=page.cursor_sort_key)))
    assert pairs(rest.returned_kv_items) == [("alice", "c.txt")] and rest.cursor_sort_key is None

    by_size = client.scan_skey_kv(ScanSkeyKvRequest(store_name=store, body=ScanSkeyKvRequestBody(
        table_name="files", hint_index_name="by_size", shard_key={"owner": "alice"})))
    assert [i.kv_doc["size"] for i in by_size.returned_kv_items] == [3, 7, 9]
    assert by_size.returned_kv_items[0].kv_doc == {"owner": "alice", "size": 3, "filename": "b.txt", "color": "red"}
    filtered = client.scan_skey_kv(ScanSkeyKvRequest(store_name=store, body=ScanSkeyKvRequestBody(
        table_name="files", shard_key={"owner": "alice"},
        filter_expression=ConditionExpression(multi_field_expression=MultiFieldExpression(logic="$nor", expressions=[
            SingleFieldExpression(field="size", func="$lt", value={"": 5})])))))
    assert pairs(filtered.returned_kv_items) == [("alice", "a.txt"), ("alice", "c.txt")]
    assert filtered.filtered_count == 1


def test_batch_write_and_get(client, store):
    seed(client, store)
    written = client.batch_write_kv(BatchWriteKvRequest(store_name=store, body=BatchWriteKvRequestBody(table_opers=[
        TableBatch(table_name="files", kv_opers=[
            OperItem(put_kv=PutKv(oper_id=1, kv_doc={"owner": "carol", "filename": "x", "size": 1})),
            OperItem(delete_kv=DeleteKv(oper_id=2, primary_key={"owner": "bob", "filename": "a.txt"})),
            OperItem(update_kv=UpdateKv(oper_id=3, primary_key={"owner": "alice", "filename": "a.txt"}, update_fields=UpdateFields(add={"size": 10}))),
            OperItem(delete_kv=DeleteKv(oper_id=4, primary_key={"owner": "nobody", "filename": "x"})),
        ])])))
    assert len(written.unprocessed_opers) == 1
    assert written.unprocessed_opers[0].table_name == "files"
    assert written.unprocessed_opers[0].kv_oper_ids.delete_kv_ids == [4]
    got = client.batch_get_kv(BatchGetKvRequest(store_name=store, body=BatchGetKvRequestBody(batch_get_kv_opers=[
        BatchGetKvOfTable(table_name="files", get_kv_opers=[
            GetOper(get_kv=GetKv(oper_id=1, primary_key={"owner": "carol", "filename": "x"})),
            GetOper(get_kv=GetKv(oper_id=2, primary_key={"owner": "bob", "filename": "a.txt"})),
            GetOper(get_kv=GetKv(oper_id=3, primary_key={"owner": "alice", "filename": "a.txt"})),
        ])])))
    items = got.returned_kv_items_of_all[0].returned_kv_items
    assert [i.kv_doc for i in items] == [
        {"owner": "carol", "filename": "x", "size": 1},
        {"owner": "alice", "filename": "a.txt", "size": 17, "color": "red"},
    ]
    many = [OperItem(put_kv=PutKv(oper_id=i, kv_doc={"owner": "m", "filename": str(i)})) for i in range(101)]
    e = error_of(lambda: client.batch_write_kv(BatchWriteKvRequest(store_name=store, body=BatchWriteKvRequestBody(
        table_opers=[TableBatch(table_name="files", kv_opers=many)]))))
    assert e.error_code == "KVS.00005020"


def test_ttl_expires_when_the_clock_moves(client, store, kvmux):
    client.create_table(CreateTableRequest(store_name=store, body=CreateTableRequestBody(
        table_name="sessions", primary_key_schema=PrimaryKeySchema(shard_key_fields=[Field(name="id")]),
        ttl_specification=TtlSpecification(enable=True, expire_after_seconds=60))))
    put(client, store, {"id": "s1"}, table="sessions")
    assert get(client, store, {"id": "s1"}, table="sessions").kv_doc == {"id": "s1"}
    kvmux.advance(61)
    e = error_of(lambda: get(client, store, {"id": "s1"}, table="sessions"))
    assert e.error_code == "KVS.00001016"


def test_signature_errors(kvmux, store):
    bad = make_client(kvmux, sk="wrong-secret")
    e = error_of(lambda: bad.list_store(ListStoreRequest(body=ListStoreRequestBody())))
    assert (e.status_code, e.error_code) == (401, "APIGW.0301")
    unknown = make_client(kvmux, ak="HWnobody")
    e = error_of(lambda: unknown.check_health(CheckHealthRequest(body=CheckHealthRequestBody(version=1))))
    assert (e.status_code, e.error_code) == (401, "APIGW.0301")


def test_sm3_signatures(kvmux, store):
    sm3 = make_client(kvmux, algorithm=SigningAlgorithm.HMAC_SM3)
    create_files(sm3, store)
    put(sm3, store, {"owner": "o", "filename": "f"})
    assert get(sm3, store, {"owner": "o", "filename": "f"}).kv_doc == {"owner": "o", "filename": "f"}


def test_unknown_store_and_table(client, store):
    e = error_of(lambda: get(client, store, {"owner": "a", "filename": "b"}))
    assert (e.status_code, e.error_code) == (404, "KVS.00001014")
    create_files(client, store)
    e = error_of(lambda: get(client, store, {"a": 1}, table="nosuch"))
    assert (e.status_code, e.error_code) == (404, "KVS.00001015")


@tls_only_skip("the SDK sends a store name as a host label, and `Bad_Store.kvs.localhost` (an underscore) "
               "is not a host name any certificate can match; over plain HTTP it reaches the gateway via the proxy")
def test_a_store_name_that_is_no_host_label_is_refused(client):
    e = error_of(lambda: client.create_table(CreateTableRequest(store_name="Bad_Store", body=files_schema("files"))))
    assert e.error_code == "KVS.00001001"


def test_store_quota_is_25_per_account(make_kvmux, monkeypatch):
    server = make_kvmux()
    route_through(monkeypatch, server)
    c = make_client(server)
    for i in range(25):
        create_files(c, f"quota{i}")
    e = error_of(lambda: create_files(c, "quota25"))
    assert (e.status_code, e.error_code) == (400, "KVS.00001007")


def test_default_store_option(make_kvmux, monkeypatch):
    server = make_kvmux(extra_toml='[huawei]\ndefault_store = "fallback"\n')
    route_through(monkeypatch, server)
    c = make_client(server)
    create_files(c, None)
    put(c, None, {"owner": "o", "filename": "f"})
    assert get(c, None, {"owner": "o", "filename": "f"}).kv_doc == {"owner": "o", "filename": "f"}
    stores = c.list_store(ListStoreRequest(body=ListStoreRequestBody())).stores
    assert stores == ["fallback"]


def test_async_client(kvmux, store):
    async_client = (
        KvsAsyncClient.new_builder()
        .with_credentials(BasicCredentials(AK, DEV_SECRET, "kvmuxproject"))
        .with_endpoint(sdk_endpoint(kvmux))
        .with_http_config(tls_config())
        .build()
    )
    async_client.create_table_async(CreateTableRequest(store_name=store, body=files_schema("files"))).result()
    async_client.put_kv_async(PutKvRequest(store_name=store, body=PutKvRequestBody(
        table_name="files", kv_doc={"owner": "a", "filename": "f", "n": 1}))).result()
    got = async_client.get_kv_async(GetKvRequest(store_name=store, body=GetKvRequestBody(
        table_name="files", primary_key={"owner": "a", "filename": "f"}))).result()
    assert got.kv_doc == {"owner": "a", "filename": "f", "n": 1}


def test_bad_names_and_index_hints(client, store):
    e = error_of(lambda: client.create_table(CreateTableRequest(store_name=store, body=files_schema("x"))))
    assert (e.status_code, e.error_code) == (400, "KVS.00001001")
    body = files_schema("files")
    body.local_secondary_index_schema = [SecondaryIndex(index_name=f"lsi{i}", sort_key_fields=[Field(name=f"f{i}")]) for i in range(6)]
    e = error_of(lambda: client.create_table(CreateTableRequest(store_name=store, body=body)))
    assert e.error_code == "KVS.00005010"
    body = files_schema("files")
    body.primary_key_schema = PrimaryKeySchema(shard_key_fields=[])
    e = error_of(lambda: client.create_table(CreateTableRequest(store_name=store, body=body)))
    assert e.error_code == "KVS.00005012"
    create_files(client, store)
    e = error_of(lambda: client.scan_kv(ScanKvRequest(store_name=store, body=ScanKvRequestBody(table_name="files", hint_index_name="nope"))))
    assert e.error_code == "KVS.00001001"
    e = error_of(lambda: put(client, store, {"owner": "a", "filename": "f", "bad.field": 1}))
    assert e.error_code == "KVS.00001001"
    e = error_of(lambda: put(client, store, {"owner": "a", "filename": "f", "blob": "x" * (600 * 1024)}))
    assert e.error_code == "KVS.00005018"


def test_scan_kv_projects_nested_paths_like_get_kv(client, store):
    """`projection_fields` takes `/`-separated paths into embedded documents. scan-kv used to
    look names up only at the top level, so `sub/deep` came back empty while get-kv (and the
    service) return the nested value under its full path name."""
    create_files(client, store)
    put(client, store, {"owner": "alice", "filename": "n.txt", "size": 4, "sub": {"deep": 42, "other": "x"}})
    page = client.scan_kv(ScanKvRequest(store_name=store, body=ScanKvRequestBody(
        table_name="files", projection_fields=["sub/deep", "size", "sub/missing"])))
    assert [i.kv_doc for i in page.returned_kv_items] == [{"sub/deep": 42, "size": 4}]
