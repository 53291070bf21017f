// greeting_test.go: `go test` with kvmuxtest and tencentcloud-sdk-go/tencentcloud/common
package greeting

import (
	"strings"
	"testing"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	"kvmux.dev/kvmuxtest"
)

func TestPutThenGet(t *testing.T) {
	srv := kvmuxtest.Start(t) // memory store, a free port; stopped by t.Cleanup
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint, cpf.HttpProfile.Scheme = srv.Host(), "HTTP"
	client := common.NewCommonClient(common.NewCredential(srv.Credentials("tencent")), "", cpf)
	call := func(action string, params map[string]any) string {
		req := tchttp.NewCommonRequest("teo", "2022-09-01", action)
		params["ZoneId"], params["Namespace"] = "zone-1", "ns"
		req.SetActionParameters(params)
		resp := tchttp.NewCommonResponse()
		if err := client.Send(req, resp); err != nil {
			t.Fatal(err)
		}
		return string(resp.GetBody())
	}
	call("CreateEdgeKVNamespace", map[string]any{})
	call("EdgeKVPut", map[string]any{"Key": "greeting", "Value": "hello"})
	if got := call("EdgeKVGet", map[string]any{"Keys": []string{"greeting"}}); !strings.Contains(got, `"Value":"hello"`) {
		t.Fatal(got)
	}
}
