package dev.kvmux.junit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.aliyun.teaopenapi.models.Config;
import com.aliyun.teaopenapi.models.OpenApiRequest;
import com.aliyun.teaopenapi.models.Params;
import com.aliyun.teautil.models.RuntimeOptions;
import com.google.gson.JsonParser;
import com.huaweicloud.sdk.core.exception.ServiceResponseException;
import com.huaweicloud.sdk.core.http.HttpConfig;
import com.huaweicloud.sdk.kvs.v1.KvsClient;
import com.huaweicloud.sdk.kvs.v1.KvsCredentials;
import com.huaweicloud.sdk.kvs.v1.model.CreateTableRequest;
import com.huaweicloud.sdk.kvs.v1.model.CreateTableRequestBody;
import com.huaweicloud.sdk.kvs.v1.model.Field;
import com.huaweicloud.sdk.kvs.v1.model.GetKvRequest;
import com.huaweicloud.sdk.kvs.v1.model.GetKvRequestBody;
import com.huaweicloud.sdk.kvs.v1.model.PrimaryKeySchema;
import com.huaweicloud.sdk.kvs.v1.model.PutKvRequest;
import com.huaweicloud.sdk.kvs.v1.model.PutKvRequestBody;
import com.tencentcloudapi.common.CommonClient;
import com.tencentcloudapi.common.Credential;
import com.tencentcloudapi.common.exception.TencentCloudSDKException;
import com.tencentcloudapi.common.profile.ClientProfile;
import com.tencentcloudapi.common.profile.HttpProfile;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.bson.Document;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The extension with the real vendor SDKs at the tests/sdk/java pins; reset before each test. */
@ExtendWith(KvmuxExtension.class)
class SdkTest {
    static CommonClient tencent(KvmuxServer kvmux) {
        HttpProfile http = new HttpProfile();
        http.setEndpoint(kvmux.host());
        http.setProtocol(HttpProfile.REQ_HTTP);
        ClientProfile profile = new ClientProfile();
        profile.setHttpProfile(http);
        String[] cred = kvmux.credentials("tencent");
        return new CommonClient("teo", "2022-09-01", new Credential(cred[0], cred[1]), "", profile);
    }

    static final String WHERE = "\"ZoneId\": \"zone-1\", \"Namespace\": \"ns\"";

    /** One ESA 2024-09-10 action through the OpenAPI core that esa20240910 wraps; the reply body. */
    static Map<?, ?> esa(KvmuxServer kvmux, String[] cred, String action, String method,
                         Map<String, String> query, Map<String, String> body) throws Exception {
        com.aliyun.teaopenapi.Client client = new com.aliyun.teaopenapi.Client(new Config()
            .setAccessKeyId(cred[0]).setAccessKeySecret(cred[1]).setEndpoint(kvmux.host()).setProtocol("http"));
        Params params = new Params().setAction(action).setVersion("2024-09-10").setProtocol("HTTPS")
            .setPathname("/").setMethod(method).setAuthType("AK").setStyle("RPC")
            .setReqBodyType("formData").setBodyType("json");
        return (Map<?, ?>) client.callApi(params, new OpenApiRequest().setQuery(query).setBody(body),
            new RuntimeOptions()).get("body");
    }

    @Test
    void tencentPutGet(KvmuxServer kvmux) throws Exception {
        CommonClient c = tencent(kvmux);
        c.call("CreateEdgeKVNamespace", "{" + WHERE + "}");
        c.call("EdgeKVPut", "{" + WHERE + ", \"Key\": \"greeting\", \"Value\": \"hello\"}");
        String reply = c.call("EdgeKVGet", "{" + WHERE + ", \"Keys\": [\"greeting\"]}");
        assertEquals("hello", JsonParser.parseString(reply).getAsJsonObject().getAsJsonObject("Response")
            .getAsJsonArray("Data").get(0).getAsJsonObject().get("Value").getAsString());
    }

    @Test
    void resetBeforeEachTestFreesTheNamespace(KvmuxServer kvmux) throws Exception {
        CommonClient c = tencent(kvmux);
        c.call("CreateEdgeKVNamespace", "{" + WHERE + "}"); // also made by tencentPutGet
        assertThrows(TencentCloudSDKException.class, () -> c.call("CreateEdgeKVNamespace", "{" + WHERE + "}"));
    }

    @Test
    void aliyunClockCheckpointAndCredentials(KvmuxServer kvmux) throws Exception {
        String[] dev = kvmux.credentials("aliyun");
        esa(kvmux, dev, "CreateKvNamespace", "POST", null, Map.of("Namespace", "ns"));
        Map<String, String> key = Map.of("Namespace", "ns", "Key", "k");
        esa(kvmux, dev, "PutKv", "POST", key, Map.of("Value", "seeded"));
        kvmux.checkpoint("seeded");
        esa(kvmux, dev, "PutKv", "POST", Map.of("Namespace", "ns", "Key", "k", "ExpirationTtl", "60"),
            Map.of("Value", "short-lived"));
        assertEquals("short-lived", esa(kvmux, dev, "GetKv", "GET", key, null).get("Value"));
        long before = System.currentTimeMillis() / 1000;
        assertTrue(kvmux.advanceClock(120) >= before + 120);
        assertThrows(Exception.class, () -> esa(kvmux, dev, "GetKv", "GET", key, null));
        kvmux.restore("seeded");
        assertEquals("seeded", esa(kvmux, dev, "GetKv", "GET", key, null).get("Value"));

        kvmux.addCredentials("aliyun", "LTAItenant1", "tenant-secret", "tenant1");
        String[] tenant = {"LTAItenant1", "tenant-secret"};
        assertThrows(Exception.class, () -> esa(kvmux, tenant, "GetKv", "GET", key, null));
    }

    @Test
    void huaweiDocument(KvmuxServer kvmux) {
        // The SDK addresses <store>.127.0.0.1:PORT: resolve every name to kvmux's address.
        HttpConfig config = HttpConfig.getDefaultHttpConfig()
            .withDns(host -> List.of(InetAddress.getByName("127.0.0.1")));
        String[] cred = kvmux.credentials("huawei");
        KvsClient client = KvsClient.newBuilder()
            .withCredential(new KvsCredentials().withAk(cred[0]).withSk(cred[1]).withProjectId("project"))
            .withHttpConfig(config).withEndpoints(List.of(kvmux.url())).build();
        client.createTable(new CreateTableRequest().withStoreName("mystore")
            .withBody(new CreateTableRequestBody().withTableName("users").withPrimaryKeySchema(
                new PrimaryKeySchema().withShardKeyFields(List.of(new Field().withName("id"))))));
        client.putKv(new PutKvRequest().withStoreName("mystore").withBody(new PutKvRequestBody()
            .withTableName("users").withKvDoc(new Document("id", "u1").append("greeting", "hello"))));
        GetKvRequest get = new GetKvRequest().withStoreName("mystore").withBody(
            new GetKvRequestBody().withTableName("users").withPrimaryKey(new Document("id", "u1")));
        assertEquals("hello", client.getKv(get).getKvDoc().get("greeting"));
        kvmux.reset(null, "huawei", null);
        assertThrows(ServiceResponseException.class, () -> client.getKv(get));
    }

    static double median(List<Double> xs) {
        List<Double> sorted = new ArrayList<>(xs);
        Collections.sort(sorted);
        return sorted.get(sorted.size() / 2);
    }

    @Test
    void overhead(KvmuxServer kvmux) throws Exception {
        List<Double> starts = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            long t0 = System.nanoTime();
            KvmuxServer other = KvmuxServer.start();
            starts.add((System.nanoTime() - t0) / 1e6);
            other.stop();
        }
        CommonClient c = tencent(kvmux);
        List<Double> resets = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            c.call("CreateEdgeKVNamespace", "{" + WHERE + "}");
            long t0 = System.nanoTime();
            kvmux.reset();
            resets.add((System.nanoTime() - t0) / 1e6);
        }
        System.out.printf("kvmux launcher java: KvmuxServer.start() median %.1f ms (n=10), reset() median %.2f ms (n=200)%n",
            median(starts), median(resets));
    }
}
