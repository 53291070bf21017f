package kvmux.sdk.tencent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.tencentcloudapi.common.CommonClient;
import com.tencentcloudapi.common.Credential;
import com.tencentcloudapi.common.exception.TencentCloudSDKException;
import com.tencentcloudapi.common.profile.ClientProfile;
import com.tencentcloudapi.common.profile.HttpProfile;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Drives the real Tencent Cloud Java SDK (tencentcloud-sdk-java-common 3.1.1481) against kvmux.
 * tencentcloud-sdk-java-teo is not published on Maven Central, so this uses the SDK's generic
 * {@link CommonClient} for service "teo", version 2022-09-01: the product clients are thin
 * wrappers over the same AbstractClient, so signing (TC3-HMAC-SHA256), transport and error parsing
 * are identical. The gateway address comes from KVMUX_ENDPOINT; the tests fail without it.
 */
class TencentEdgeKvTest {
  private static final Pattern UUID4 =
      Pattern.compile("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");

  private static CommonClient client(String secretKey) {
    String endpoint = System.getenv("KVMUX_ENDPOINT");
    assertNotNull(endpoint, "KVMUX_ENDPOINT must name the kvmux gateway, e.g. 127.0.0.1:9090");
    HttpProfile http = new HttpProfile();
    http.setEndpoint(endpoint);
    http.setProtocol(HttpProfile.REQ_HTTP);
    ClientProfile profile = new ClientProfile();
    profile.setHttpProfile(http);
    return new CommonClient(
        "teo", "2022-09-01", new Credential("AKIDkvmuxdev", secretKey), "", profile);
  }

  private static String unique(String prefix) {
    return prefix + "-" + UUID.randomUUID().toString().substring(0, 10);
  }

  /** Calls an action and returns the inner Response object. */
  private static JsonObject call(CommonClient c, String action, JsonObject params)
      throws TencentCloudSDKException {
    String reply = c.call(action, params.toString());
    JsonObject response = JsonParser.parseString(reply).getAsJsonObject().getAsJsonObject("Response");
    assertTrue(UUID4.matcher(response.get("RequestId").getAsString()).matches(), reply);
    return response;
  }

  private static JsonObject params(String zone, String ns) {
    JsonObject p = new JsonObject();
    p.addProperty("ZoneId", zone);
    p.addProperty("Namespace", ns);
    return p;
  }

  private static JsonArray array(String... items) {
    JsonArray a = new JsonArray();
    for (String s : items) {
      a.add(s);
    }
    return a;
  }

  private static List<String> strings(JsonArray a) {
    List<String> out = new ArrayList<>();
    for (JsonElement e : a) {
      out.add(e.getAsString());
    }
    return out;
  }

  @Test
  void putGetListDelete() throws Exception {
    CommonClient c = client("kvmuxdevsecret");
    String zone = unique("zone-java");
    String ns = unique("ns");
    call(c, "CreateEdgeKVNamespace", params(zone, ns));
    try {
      for (String[] kv : new String[][] {{"hello", "world"}, {"hello1", "世界"}, {"other", "x"}}) {
        JsonObject put = params(zone, ns);
        put.addProperty("Key", kv[0]);
        put.addProperty("Value", kv[1]);
        call(c, "EdgeKVPut", put);
      }

      JsonObject get = params(zone, ns);
      get.add("Keys", array("hello1", "missing", "hello"));
      JsonArray data = call(c, "EdgeKVGet", get).getAsJsonArray("Data");
      List<String> values = new ArrayList<>();
      for (JsonElement d : data) {
        values.add(d.getAsJsonObject().get("Value").getAsString());
        assertEquals("", d.getAsJsonObject().get("Expiration").getAsString());
      }
      assertEquals(List.of("世界", "", "world"), values);

      JsonObject list = params(zone, ns);
      list.addProperty("Prefix", "he");
      list.addProperty("Limit", 1);
      JsonObject page = call(c, "EdgeKVList", list);
      assertEquals(List.of("hello"), strings(page.getAsJsonArray("Keys")));
      assertEquals("hello", page.get("Cursor").getAsString());
      list.addProperty("Cursor", "hello");
      page = call(c, "EdgeKVList", list);
      assertEquals(List.of("hello1"), strings(page.getAsJsonArray("Keys")));
      assertEquals("", page.get("Cursor").getAsString());

      JsonObject del = params(zone, ns);
      del.add("Keys", array("hello", "never-there"));
      call(c, "EdgeKVDelete", del);
      JsonObject all = call(c, "EdgeKVList", params(zone, ns));
      assertEquals(List.of("hello1", "other"), strings(all.getAsJsonArray("Keys")));
    } finally {
      call(c, "DeleteEdgeKVNamespace", params(zone, ns));
    }
  }

  @Test
  void errorCodes() {
    CommonClient c = client("kvmuxdevsecret");
    JsonObject get = params(unique("zone-java"), "absent");
    get.add("Keys", array("a"));
    TencentCloudSDKException notFound =
        assertThrows(TencentCloudSDKException.class, () -> call(c, "EdgeKVGet", get));
    assertEquals("ResourceUnavailable.NamespaceNotFound", notFound.getErrorCode());
    assertTrue(UUID4.matcher(notFound.getRequestId()).matches());

    JsonObject tooMany = params("z", "n");
    JsonArray keys = new JsonArray();
    for (int i = 0; i < 21; i++) {
      keys.add("k" + i);
    }
    tooMany.add("Keys", keys);
    assertEquals(
        "InvalidParameter.KeysTooMany",
        assertThrows(TencentCloudSDKException.class, () -> call(c, "EdgeKVGet", tooMany))
            .getErrorCode());

    JsonObject describe = new JsonObject();
    describe.addProperty("ZoneId", "z");
    assertEquals(
        "AuthFailure.SignatureFailure",
        assertThrows(
                TencentCloudSDKException.class,
                () -> call(client("wrong-secret"), "DescribeEdgeKVNamespaces", describe))
            .getErrorCode());
  }
}
