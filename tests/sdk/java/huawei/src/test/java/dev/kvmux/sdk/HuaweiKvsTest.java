package dev.kvmux.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

import com.huaweicloud.sdk.core.exception.ServiceResponseException;
import com.huaweicloud.sdk.core.http.HttpConfig;
import com.huaweicloud.sdk.kvs.v1.KvsClient;
import com.huaweicloud.sdk.kvs.v1.KvsCredentials;
import com.huaweicloud.sdk.kvs.v1.model.CheckHealthRequest;
import com.huaweicloud.sdk.kvs.v1.model.CheckHealthRequestBody;
import com.huaweicloud.sdk.kvs.v1.model.CreateTableRequest;
import com.huaweicloud.sdk.kvs.v1.model.CreateTableRequestBody;
import com.huaweicloud.sdk.kvs.v1.model.CreateTableResponse;
import com.huaweicloud.sdk.kvs.v1.model.DeleteTableRequest;
import com.huaweicloud.sdk.kvs.v1.model.DeleteTableRequestBody;
import com.huaweicloud.sdk.kvs.v1.model.Field;
import com.huaweicloud.sdk.kvs.v1.model.GetKvRequest;
import com.huaweicloud.sdk.kvs.v1.model.GetKvRequestBody;
import com.huaweicloud.sdk.kvs.v1.model.GetKvResponse;
import com.huaweicloud.sdk.kvs.v1.model.PrimaryKeySchema;
import com.huaweicloud.sdk.kvs.v1.model.PutKvRequest;
import com.huaweicloud.sdk.kvs.v1.model.PutKvRequestBody;
import com.huaweicloud.sdk.kvs.v1.model.ScanKvRequest;
import com.huaweicloud.sdk.kvs.v1.model.ScanKvRequestBody;
import com.huaweicloud.sdk.kvs.v1.model.ScanKvResponse;
import java.net.InetAddress;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import org.bson.Document;
import org.junit.jupiter.api.Test;

/**
 * Real-SDK test: the official Java KVS client (com.huaweicloud.sdk:huaweicloud-sdk-kvs) against
 * kvmux at KVMUX_ENDPOINT (fails when unset). The SDK addresses a store as
 * http://&lt;store&gt;.&lt;endpoint host&gt;, which does not resolve; the public HttpConfig.withDns
 * hook resolves every name to the gateway, so the request keeps its signed Host header. The Java
 * SDK decodes error bodies as BSON with camelCase keys (errorCode, errorMsg), which kvmux sends
 * alongside the snake_case ones the Python SDK reads.
 */
class HuaweiKvsTest {

    private static String endpoint() {
        String ep = System.getenv("KVMUX_ENDPOINT");
        if (ep == null || ep.isEmpty()) {
            fail("KVMUX_ENDPOINT is not set (e.g. 127.0.0.1:9090)");
        }
        return ep;
    }

    private static KvsClient client(String sk) {
        String ep = endpoint();
        String host = ep.substring(0, ep.lastIndexOf(':'));
        HttpConfig config = HttpConfig.getDefaultHttpConfig()
                .withTimeout(10)
                .withDns(hostname -> Collections.singletonList(InetAddress.getByName(host)));
        KvsCredentials credentials = new KvsCredentials()
                .withAk("HWkvmuxdev")
                .withSk(sk)
                .withProjectId("kvmuxproject");
        return KvsClient.newBuilder()
                .withCredential(credentials)
                .withHttpConfig(config)
                .withEndpoint("http://" + ep)
                .build();
    }

    @Test
    void createPutGetScanAndAnErrorCode() {
        KvsClient kvs = client("kvmuxdevsecret");
        // One store for every run (an account may hold only 25) and a fresh table per run,
        // deleted at the end, so reruns against one gateway neither collide nor exhaust a quota.
        String store = "kvmux-sdk-java";
        String table = "files" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
        try {
            exercise(kvs, store, table);
        } finally {
            kvs.deleteTable(new DeleteTableRequest().withStoreName(store)
                    .withBody(new DeleteTableRequestBody().withTableName(table)));
        }
    }

    private static void exercise(KvsClient kvs, String store, String table) {

        CreateTableResponse created = kvs.createTable(new CreateTableRequest()
                .withStoreName(store)
                .withBody(new CreateTableRequestBody()
                        .withTableName(table)
                        .withPrimaryKeySchema(new PrimaryKeySchema()
                                .withShardKeyFields(List.of(new Field().withName("owner")))
                                .withSortKeyFields(List.of(new Field().withName("filename"))))));
        assertEquals(table, created.getTableName());

        String[] names = {"a.txt", "b.txt", "c.txt"};
        for (int i = 0; i < names.length; i++) {
            kvs.putKv(new PutKvRequest().withStoreName(store).withBody(new PutKvRequestBody()
                    .withTableName(table)
                    .withKvDoc(new Document("owner", "duke").append("filename", names[i]).append("size", i + 1)
                            .append("big", 5_000_000_000L))));
        }

        GetKvResponse got = kvs.getKv(new GetKvRequest().withStoreName(store).withBody(new GetKvRequestBody()
                .withTableName(table)
                .withPrimaryKey(new Document("owner", "duke").append("filename", "b.txt"))));
        assertEquals(new Document("owner", "duke").append("filename", "b.txt").append("size", 2)
                .append("big", 5_000_000_000L), got.getKvDoc());

        ScanKvResponse page = kvs.scanKv(new ScanKvRequest().withStoreName(store)
                .withBody(new ScanKvRequestBody().withTableName(table).withLimit(2)));
        assertEquals(2L, page.getReturnedCount());
        assertEquals(2, page.getReturnedKvItems().size());
        assertEquals("a.txt", page.getReturnedKvItems().get(0).getKvDoc().getString("filename"));
        assertNotNull(page.getCursorKey());
        assertEquals("c.txt", page.getCursorKey().getString("filename"));
        ScanKvResponse rest = kvs.scanKv(new ScanKvRequest().withStoreName(store)
                .withBody(new ScanKvRequestBody().withTableName(table).withLimit(2).withStartKey(page.getCursorKey())));
        assertEquals(1, rest.getReturnedKvItems().size());
        assertNull(rest.getCursorKey());

        ServiceResponseException missing = assertThrows(ServiceResponseException.class, () ->
                kvs.getKv(new GetKvRequest().withStoreName(store).withBody(new GetKvRequestBody()
                        .withTableName(table)
                        .withPrimaryKey(new Document("owner", "duke").append("filename", "zzz")))));
        assertEquals(404, missing.getHttpStatusCode());
        assertEquals("KVS.00001016", missing.getErrorCode());
        assertNotNull(missing.getRequestId());
        assertFalse(missing.getRequestId().isEmpty());
    }

    @Test
    void wrongSecretIsApigw0301() {
        KvsClient kvs = client("wrong-secret");
        ServiceResponseException e = assertThrows(ServiceResponseException.class, () ->
                kvs.checkHealth(new CheckHealthRequest().withBody(new CheckHealthRequestBody().withVersion(1))));
        assertEquals(401, e.getHttpStatusCode());
        assertEquals("APIGW.0301", e.getErrorCode());
    }
}
