package dev.kvmux.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.aliyun.tea.TeaException;
import com.aliyun.teaopenapi.Client;
import com.aliyun.teaopenapi.models.Config;
import com.aliyun.teaopenapi.models.OpenApiRequest;
import com.aliyun.teaopenapi.models.Params;
import com.aliyun.teautil.models.RuntimeOptions;
import java.util.HashMap;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * Alibaba's Java OpenAPI core (com.aliyun:tea-openapi, which the generated com.aliyun:esa20240910
 * SDK wraps: each SDK method builds exactly these Params and calls callApi) against a running
 * kvmux. The gateway address comes from KVMUX_ENDPOINT; dev credentials.
 */
class AliyunEsaTest {

    static String endpoint() {
        String e = System.getenv("KVMUX_ENDPOINT");
        assertNotNull(e, "KVMUX_ENDPOINT must name a running kvmux (e.g. 127.0.0.1:9090)");
        return e;
    }

    static Client client(String secret) throws Exception {
        Config config = new Config()
                .setAccessKeyId("LTAIkvmuxdev")
                .setAccessKeySecret(secret)
                .setEndpoint(endpoint())
                .setProtocol("http");
        return new Client(config);
    }

    /** Issues an ESA 2024-09-10 RPC action exactly as the generated SDK does. */
    static Map<String, ?> call(Client c, String action, String method, Map<String, String> query,
                               Map<String, String> body) throws Exception {
        Params params = new Params()
                .setAction(action)
                .setVersion("2024-09-10")
                .setProtocol("HTTPS")
                .setPathname("/")
                .setMethod(method)
                .setAuthType("AK")
                .setStyle("RPC")
                .setReqBodyType("formData")
                .setBodyType("json");
        OpenApiRequest req = new OpenApiRequest().setQuery(query);
        if (body != null) {
            req.setBody(body);
        }
        return c.callApi(params, req, new RuntimeOptions());
    }

    @SuppressWarnings("unchecked")
    static Object field(Map<String, ?> resp, String name) {
        return ((Map<String, Object>) resp.get("body")).get(name);
    }

    static String unique(String prefix) {
        return prefix + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    }

    @Test
    void endpointIsSet() {
        endpoint();
    }

    @Test
    void putGetDelete() throws Exception {
        Client c = client("kvmuxdevsecret");
        String ns = unique("java");
        Map<String, String> create = new HashMap<>();
        create.put("Namespace", ns);
        assertEquals(ns, field(call(c, "CreateKvNamespace", "POST", null, create), "Namespace"));

        Map<String, String> key = new HashMap<>();
        key.put("Namespace", ns);
        key.put("Key", "k1");
        Map<String, String> put = new HashMap<>(key);
        put.put("ExpirationTtl", "3600");
        Map<String, String> value = new HashMap<>();
        value.put("Value", "hello from java & more/ä");
        assertEquals("25", field(call(c, "PutKv", "POST", put, value), "Length"));

        assertEquals("hello from java & more/ä", field(call(c, "GetKv", "GET", key, null), "Value"));
        call(c, "DeleteKv", "GET", key, null);

        TeaException e = assertThrows(TeaException.class, () -> call(c, "GetKv", "GET", key, null));
        assertEquals("InvalidKey.NotFound", e.getCode());
        assertEquals(404, e.getStatusCode());
    }

    @Test
    void wrongSecretIsSignatureDoesNotMatch() throws Exception {
        Client c = client("not-the-secret");
        TeaException e = assertThrows(TeaException.class,
                () -> call(c, "DescribeKvAccountStatus", "GET", new HashMap<>(), null));
        assertEquals("SignatureDoesNotMatch", e.getCode());
        assertEquals(400, e.getStatusCode());
    }
}
