// GreetingTest.java: `mvn test` with kvmux-junit5, junit-jupiter and tencentcloud-sdk-java-common
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.tencentcloudapi.common.CommonClient;
import com.tencentcloudapi.common.Credential;
import com.tencentcloudapi.common.profile.ClientProfile;
import com.tencentcloudapi.common.profile.HttpProfile;
import dev.kvmux.junit.KvmuxExtension;
import dev.kvmux.junit.KvmuxServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(KvmuxExtension.class) // one kvmux per class, reset before each test, stopped after
class GreetingTest {
    @Test
    void putThenGet(KvmuxServer kvmux) throws Exception {
        HttpProfile http = new HttpProfile();
        http.setEndpoint(kvmux.host());
        http.setProtocol(HttpProfile.REQ_HTTP);
        String[] key = kvmux.credentials("tencent");
        CommonClient c = new CommonClient("teo", "2022-09-01", new Credential(key[0], key[1]), "",
            new ClientProfile(ClientProfile.SIGN_TC3_256, http));
        String where = "\"ZoneId\": \"zone-1\", \"Namespace\": \"ns\"";
        c.call("CreateEdgeKVNamespace", "{" + where + "}");
        c.call("EdgeKVPut", "{" + where + ", \"Key\": \"greeting\", \"Value\": \"hello\"}");
        assertTrue(c.call("EdgeKVGet", "{" + where + ", \"Keys\": [\"greeting\"]}").contains("\"Value\":\"hello\""));
    }
}
