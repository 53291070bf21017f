// Package aliyun drives Alibaba's Go OpenAPI core (darabonba-openapi/v2, the client that the
// generated esa-20240910 SDK wraps: each SDK method builds exactly these Params and calls CallApi)
// against a running kvmux. The esa-20240910 module itself is not served by the module proxy
// reachable here, so the test issues the same calls the SDK's PutKv/GetKv/DeleteKv make.
// The gateway address comes from KVMUX_ENDPOINT; dev credentials.
package aliyun

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
)

func endpoint(t *testing.T) string {
	e := os.Getenv("KVMUX_ENDPOINT")
	if e == "" {
		t.Fatal("KVMUX_ENDPOINT must name a running kvmux (e.g. 127.0.0.1:9090)")
	}
	return e
}

func newClient(t *testing.T, secret string) *openapi.Client {
	cfg := &openapi.Config{}
	cfg.SetAccessKeyId("LTAIkvmuxdev").SetAccessKeySecret(secret).SetEndpoint(endpoint(t)).SetProtocol("http")
	c, err := openapi.NewClient(cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return c
}

func unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// call issues an ESA 2024-09-10 RPC action exactly as the generated SDK does.
func call(c *openapi.Client, action, method string, query, body map[string]*string) (map[string]interface{}, error) {
	params := &openapi.Params{
		Action:      dara.String(action),
		Version:     dara.String("2024-09-10"),
		Protocol:    dara.String("HTTPS"),
		Pathname:    dara.String("/"),
		Method:      dara.String(method),
		AuthType:    dara.String("AK"),
		Style:       dara.String("RPC"),
		ReqBodyType: dara.String("formData"),
		BodyType:    dara.String("json"),
	}
	req := &openapi.OpenApiRequest{Query: query}
	if body != nil {
		req.Body = body
	}
	return c.CallApi(params, req, &dara.RuntimeOptions{})
}

func field(t *testing.T, resp map[string]interface{}, name string) interface{} {
	body, ok := resp["body"].(map[string]interface{})
	if !ok {
		t.Fatalf("no body in %v", resp)
	}
	return body[name]
}

// vendorError extracts the vendor code and HTTP status from the SDK's error types.
func vendorError(t *testing.T, err error) (string, int) {
	var sdk *tea.SDKError
	if errors.As(err, &sdk) {
		return dara.StringValue(sdk.Code), dara.IntValue(sdk.StatusCode)
	}
	var ce *openapi.ClientError
	if errors.As(err, &ce) {
		return dara.StringValue(ce.Code), dara.IntValue(ce.StatusCode)
	}
	t.Fatalf("want a vendor error, got %T %v", err, err)
	return "", 0
}

func TestEndpointIsSet(t *testing.T) {
	endpoint(t)
}

func TestPutGetDelete(t *testing.T) {
	c := newClient(t, "kvmuxdevsecret")
	ns := unique("go")
	resp, err := call(c, "CreateKvNamespace", "POST", nil, map[string]*string{"Namespace": dara.String(ns)})
	if err != nil {
		t.Fatalf("CreateKvNamespace: %v", err)
	}
	if got := field(t, resp, "Namespace"); got != ns {
		t.Fatalf("Namespace = %v", got)
	}
	q := map[string]*string{"Namespace": dara.String(ns), "Key": dara.String("k1"), "ExpirationTtl": dara.String("3600")}
	resp, err = call(c, "PutKv", "POST", q, map[string]*string{"Value": dara.String("hello from go & more/ä")})
	if err != nil {
		t.Fatalf("PutKv: %v", err)
	}
	if got := field(t, resp, "Length"); got != "23" {
		t.Fatalf("Length = %#v", got)
	}
	key := map[string]*string{"Namespace": dara.String(ns), "Key": dara.String("k1")}
	resp, err = call(c, "GetKv", "GET", key, nil)
	if err != nil {
		t.Fatalf("GetKv: %v", err)
	}
	if got := field(t, resp, "Value"); got != "hello from go & more/ä" {
		t.Fatalf("Value = %#v", got)
	}
	if _, err = call(c, "DeleteKv", "GET", key, nil); err != nil {
		t.Fatalf("DeleteKv: %v", err)
	}
	_, err = call(c, "GetKv", "GET", key, nil)
	if code, status := vendorError(t, err); code != "InvalidKey.NotFound" || status != 404 {
		t.Fatalf("GetKv after delete: code %s status %d", code, status)
	}
}

func TestWrongSecretIsSignatureDoesNotMatch(t *testing.T) {
	c := newClient(t, "not-the-secret")
	_, err := call(c, "DescribeKvAccountStatus", "GET", nil, nil)
	if code, status := vendorError(t, err); code != "SignatureDoesNotMatch" || status != 400 {
		t.Fatalf("code %s status %d", code, status)
	}
}
