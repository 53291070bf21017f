// Package tencent drives the real Tencent Cloud Go SDK (tencentcloud-sdk-go common v1.3.209)
// against kvmux. The product module tencentcloud/teo is not served by the Go module proxy this
// project can reach (it answers 403 "not available"), so the test uses the SDK's own generic
// CommonClient with service "teo", version 2022-09-01: the same signing (TC3, Host verbatim,
// service teo), transport and error parsing as teo.Client, which is a thin wrapper over it.
//
// The gateway address comes from KVMUX_ENDPOINT (e.g. 127.0.0.1:9090); the test fails without it.
package tencent

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"testing"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
)

var uuid4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// client builds a CommonClient. Only TC3 over POST is exercised: the Go SDK flattens GET and
// legacy-style parameters by reflecting over a typed request's struct tags, which a CommonRequest
// (a map) does not have, so those styles would send no business parameters at all.
func client(t *testing.T, secretKey string) *common.Client {
	t.Helper()
	endpoint := os.Getenv("KVMUX_ENDPOINT")
	if endpoint == "" {
		t.Fatal("KVMUX_ENDPOINT must name the kvmux gateway, e.g. 127.0.0.1:9090")
	}
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = endpoint
	cpf.HttpProfile.Scheme = "HTTP"
	return common.NewCommonClient(common.NewCredential("AKIDkvmuxdev", secretKey), "", cpf)
}

func unique(prefix string) string {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

// call sends one EdgeKV action and returns the inner Response object.
func call(c *common.Client, action string, params map[string]interface{}) (map[string]interface{}, error) {
	req := tchttp.NewCommonRequest("teo", "2022-09-01", action)
	if err := req.SetActionParameters(params); err != nil {
		return nil, err
	}
	resp := tchttp.NewCommonResponse()
	if err := c.Send(req, resp); err != nil {
		return nil, err
	}
	var out struct {
		Response map[string]interface{}
	}
	if err := json.Unmarshal(resp.GetBody(), &out); err != nil {
		return nil, err
	}
	return out.Response, nil
}

func must(t *testing.T, c *common.Client, action string, params map[string]interface{}) map[string]interface{} {
	t.Helper()
	out, err := call(c, action, params)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	if id, _ := out["RequestId"].(string); !uuid4.MatchString(id) {
		t.Fatalf("%s: RequestId %q is not a UUID v4", action, id)
	}
	return out
}

func codeOf(t *testing.T, err error) string {
	t.Helper()
	var sdkErr *tcerr.TencentCloudSDKError
	if !errors.As(err, &sdkErr) {
		t.Fatalf("expected a TencentCloudSDKError, got %v", err)
	}
	if !uuid4.MatchString(sdkErr.GetRequestId()) {
		t.Fatalf("error without a UUID v4 request id: %v", sdkErr)
	}
	return sdkErr.GetCode()
}

func keysOf(v interface{}) []string {
	out := []string{}
	for _, k := range v.([]interface{}) {
		out = append(out, k.(string))
	}
	return out
}

func TestPutGetListDelete(t *testing.T) {
	c := client(t, "kvmuxdevsecret")
	zone, ns := unique("zone-go"), unique("ns")
	must(t, c, "CreateEdgeKVNamespace", map[string]interface{}{"ZoneId": zone, "Namespace": ns})
	defer must(t, c, "DeleteEdgeKVNamespace", map[string]interface{}{"ZoneId": zone, "Namespace": ns})
	base := func(extra map[string]interface{}) map[string]interface{} {
		m := map[string]interface{}{"ZoneId": zone, "Namespace": ns}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	must(t, c, "EdgeKVPut", base(map[string]interface{}{"Key": "hello", "Value": "world"}))
	must(t, c, "EdgeKVPut", base(map[string]interface{}{"Key": "hello1", "Value": "世界", "ExpirationTTL": 3600}))
	must(t, c, "EdgeKVPut", base(map[string]interface{}{"Key": "zzz", "Value": "last"}))

	got := must(t, c, "EdgeKVGet", base(map[string]interface{}{"Keys": []string{"hello1", "missing", "hello"}}))
	data := got["Data"].([]interface{})
	values := []string{}
	for _, d := range data {
		values = append(values, d.(map[string]interface{})["Value"].(string))
	}
	if !reflect.DeepEqual(values, []string{"世界", "", "world"}) {
		t.Fatalf("EdgeKVGet values = %v", values)
	}
	if exp := data[0].(map[string]interface{})["Expiration"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(exp) {
		t.Fatalf("Expiration %q is not ISO-8601 UTC", exp)
	}

	page := must(t, c, "EdgeKVList", base(map[string]interface{}{"Prefix": "he", "Limit": 1}))
	if !reflect.DeepEqual(keysOf(page["Keys"]), []string{"hello"}) || page["Cursor"] != "hello" {
		t.Fatalf("first page = %v", page)
	}
	page = must(t, c, "EdgeKVList", base(map[string]interface{}{"Prefix": "he", "Limit": 1, "Cursor": "hello"}))
	if !reflect.DeepEqual(keysOf(page["Keys"]), []string{"hello1"}) || page["Cursor"] != "" {
		t.Fatalf("second page = %v", page)
	}

	must(t, c, "EdgeKVDelete", base(map[string]interface{}{"Keys": []string{"hello", "never"}}))
	all := must(t, c, "EdgeKVList", base(nil))
	if !reflect.DeepEqual(keysOf(all["Keys"]), []string{"hello1", "zzz"}) {
		t.Fatalf("after delete = %v", all["Keys"])
	}
}

func TestErrorCodes(t *testing.T) {
	c := client(t, "kvmuxdevsecret")
	_, err := call(c, "EdgeKVGet", map[string]interface{}{"ZoneId": unique("zone-go"), "Namespace": "absent", "Keys": []string{"a"}})
	if code := codeOf(t, err); code != "ResourceUnavailable.NamespaceNotFound" {
		t.Fatalf("code = %s", code)
	}
	_, err = call(client(t, "wrong-secret"), "DescribeEdgeKVNamespaces", map[string]interface{}{"ZoneId": "z"})
	if code := codeOf(t, err); code != "AuthFailure.SignatureFailure" {
		t.Fatalf("code = %s", code)
	}
	_, err = call(c, "EdgeKVUnknownAction", map[string]interface{}{"ZoneId": "z"})
	if code := codeOf(t, err); code != "InvalidAction" {
		t.Fatalf("code = %s", code)
	}
}
