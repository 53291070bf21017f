// The kvmuxtest launcher with the real vendor SDKs of tests/sdk/go (the same module pins): the
// Tencent CommonClient, Alibaba's OpenAPI core (what esa-20240910 wraps) and the Huawei KVS
// SDK, each pointed at a kvmux that kvmuxtest.Start runs for the test.
package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"
	kvs "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/kvs/v1"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/kvs/v1/model"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	"go.mongodb.org/mongo-driver/bson"

	"kvmux.dev/kvmuxtest"
)

// tencent sends one EdgeKV action through the Tencent CommonClient and returns the reply body.
func tencent(t *testing.T, srv *kvmuxtest.Server, action string, params map[string]any) ([]byte, error) {
	t.Helper()
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = srv.Host()
	cpf.HttpProfile.Scheme = "HTTP"
	id, secret := srv.Credentials("tencent")
	client := common.NewCommonClient(common.NewCredential(id, secret), "", cpf)
	req := tchttp.NewCommonRequest("teo", "2022-09-01", action)
	if err := req.SetActionParameters(params); err != nil {
		t.Fatal(err)
	}
	resp := tchttp.NewCommonResponse()
	err := client.Send(req, resp)
	return resp.GetBody(), err
}

// esa issues one ESA 2024-09-10 action as the generated SDK does, with the given key pair.
func esa(t *testing.T, srv *kvmuxtest.Server, id, secret, action, method string, query, body map[string]*string) (map[string]any, error) {
	t.Helper()
	cfg := &openapi.Config{}
	cfg.SetAccessKeyId(id).SetAccessKeySecret(secret).SetEndpoint(srv.Host()).SetProtocol("http")
	client, err := openapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	params := &openapi.Params{
		Action: dara.String(action), Version: dara.String("2024-09-10"),
		Protocol: dara.String("HTTPS"), Pathname: dara.String("/"), Method: dara.String(method),
		AuthType: dara.String("AK"), Style: dara.String("RPC"),
		ReqBodyType: dara.String("formData"), BodyType: dara.String("json"),
	}
	resp, err := client.CallApi(params, &openapi.OpenApiRequest{Query: query, Body: body}, &dara.RuntimeOptions{})
	if err != nil {
		return nil, err
	}
	return resp["body"].(map[string]any), nil
}

// huawei builds a KVS client whose connections all go to kvmux (the SDK addresses
// <store>.<endpoint host>, which does not resolve; the signed Host keeps the store).
func huawei(t *testing.T, srv *kvmuxtest.Server) *kvs.KvsClient {
	t.Helper()
	id, secret := srv.Credentials("huawei")
	cred, err := kvs.NewKvsCredentialsBuilder().WithAk(id).WithSk(secret).WithProjectId("project").SafeBuild()
	if err != nil {
		t.Fatal(err)
	}
	httpConfig := config.DefaultHttpConfig().
		WithDialContext(func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, srv.Host())
		})
	hc, err := kvs.KvsClientBuilder().WithEndpoints([]string{srv.URL()}).WithCredential(cred).
		WithHttpConfig(httpConfig).SafeBuild()
	if err != nil {
		t.Fatal(err)
	}
	return kvs.NewKvsClient(hc)
}

func TestTencentThenResetFreesTheNamespace(t *testing.T) {
	srv := kvmuxtest.Start(t)
	where := func(m map[string]any) map[string]any {
		m["ZoneId"], m["Namespace"] = "zone-1", "ns"
		return m
	}
	if _, err := tencent(t, srv, "CreateEdgeKVNamespace", where(map[string]any{})); err != nil {
		t.Fatal(err)
	}
	if _, err := tencent(t, srv, "EdgeKVPut", where(map[string]any{"Key": "k", "Value": "hello"})); err != nil {
		t.Fatal(err)
	}
	body, err := tencent(t, srv, "EdgeKVGet", where(map[string]any{"Keys": []string{"k"}}))
	var got struct {
		Response struct{ Data []struct{ Key, Value string } }
	}
	if err != nil || json.Unmarshal(body, &got) != nil || got.Response.Data[0].Value != "hello" {
		t.Fatalf("get: %s %v", body, err)
	}
	_, err = tencent(t, srv, "CreateEdgeKVNamespace", where(map[string]any{}))
	var sdkErr *tcerr.TencentCloudSDKError
	if !errors.As(err, &sdkErr) {
		t.Fatalf("creating the namespace twice: %v", err)
	}
	if err := srv.Reset(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tencent(t, srv, "CreateEdgeKVNamespace", where(map[string]any{})); err != nil {
		t.Fatalf("after reset: %v", err)
	}
}

func TestAliyunClockCheckpointAndCredentials(t *testing.T) {
	srv := kvmuxtest.Start(t)
	id, secret := srv.Credentials("aliyun")
	ns := dara.String("ns")
	if _, err := esa(t, srv, id, secret, "CreateKvNamespace", "POST", nil, map[string]*string{"Namespace": ns}); err != nil {
		t.Fatal(err)
	}
	key := map[string]*string{"Namespace": ns, "Key": dara.String("k")}
	put := func(value string, ttl string) {
		t.Helper()
		q := map[string]*string{"Namespace": ns, "Key": dara.String("k")}
		if ttl != "" {
			q["ExpirationTtl"] = dara.String(ttl)
		}
		if _, err := esa(t, srv, id, secret, "PutKv", "POST", q, map[string]*string{"Value": dara.String(value)}); err != nil {
			t.Fatal(err)
		}
	}
	get := func() (any, error) {
		body, err := esa(t, srv, id, secret, "GetKv", "GET", key, nil)
		if err != nil {
			return nil, err
		}
		return body["Value"], nil
	}
	put("seeded", "")
	if err := srv.Checkpoint("seeded"); err != nil {
		t.Fatal(err)
	}
	put("short-lived", "60")
	if v, err := get(); v != "short-lived" || err != nil {
		t.Fatalf("get: %v %v", v, err)
	}
	if _, err := srv.AdvanceClock(120); err != nil {
		t.Fatal(err)
	}
	if v, err := get(); err == nil {
		t.Fatalf("the 60 s TTL did not expire after advancing 120 s: %v", v)
	}
	if err := srv.Restore("seeded"); err != nil {
		t.Fatal(err)
	}
	if v, err := get(); v != "seeded" || err != nil {
		t.Fatalf("after restore: %v %v", v, err)
	}
	// Another account's key pair sees none of dev's namespaces.
	if err := srv.AddCredentials("aliyun", "LTAItenant1", "tenant-secret", "tenant1"); err != nil {
		t.Fatal(err)
	}
	if _, err := esa(t, srv, "LTAItenant1", "tenant-secret", "GetKv", "GET", key, nil); err == nil {
		t.Fatal("tenant1 read dev's namespace")
	}
}

func TestHuaweiStoreTableDocument(t *testing.T) {
	srv := kvmuxtest.Start(t)
	client := huawei(t, srv)
	store, table := "mystore", "users"
	_, err := client.CreateTable(&model.CreateTableRequest{StoreName: &store, Body: &model.CreateTableRequestBody{
		TableName:        table,
		PrimaryKeySchema: &model.PrimaryKeySchema{ShardKeyFields: []model.Field{{Name: "id"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	doc := bson.D{{Key: "id", Value: "u1"}, {Key: "greeting", Value: "hello"}}
	if _, err := client.PutKv(&model.PutKvRequest{StoreName: &store,
		Body: &model.PutKvRequestBody{TableName: table, KvDoc: &doc}}); err != nil {
		t.Fatal(err)
	}
	pk := bson.D{{Key: "id", Value: "u1"}}
	got, err := client.GetKv(&model.GetKvRequest{StoreName: &store,
		Body: &model.GetKvRequestBody{TableName: table, PrimaryKey: &pk}})
	if err != nil || got.KvDoc.Map()["greeting"] != "hello" {
		t.Fatalf("get-kv: %v %v", got, err)
	}
	if err := srv.Reset(&kvmuxtest.Scope{Dialect: "huawei"}); err != nil {
		t.Fatal(err)
	}
	_, err = client.GetKv(&model.GetKvRequest{StoreName: &store,
		Body: &model.GetKvRequestBody{TableName: table, PrimaryKey: &pk}})
	var sre *sdkerr.ServiceResponseError
	if !errors.As(err, &sre) || sre.StatusCode/100 != 4 {
		t.Fatalf("get-kv after a Huawei reset: want a 4xx ServiceResponseError, got %v", err)
	}
}

func median(xs []time.Duration) time.Duration {
	sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
	return xs[len(xs)/2]
}

// TestOverhead measures kvmuxtest.Start (to ready) and a Reset between tests; -v prints them.
func TestOverhead(t *testing.T) {
	var starts []time.Duration
	for i := 0; i < 10; i++ {
		t0 := time.Now()
		srv, err := kvmuxtest.StartServer()
		if err != nil {
			t.Fatal(err)
		}
		starts = append(starts, time.Since(t0))
		srv.Stop()
	}
	srv := kvmuxtest.Start(t)
	var resets []time.Duration
	for i := 0; i < 200; i++ {
		where := map[string]any{"ZoneId": "zone-1", "Namespace": "ns"}
		if _, err := tencent(t, srv, "CreateEdgeKVNamespace", where); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if err := srv.Reset(nil); err != nil {
			t.Fatal(err)
		}
		resets = append(resets, time.Since(t0))
	}
	msg := fmt.Sprintf("kvmux launcher go: Start median %.1f ms (n=10), Reset median %.2f ms (n=200)",
		float64(median(starts).Microseconds())/1000, float64(median(resets).Microseconds())/1000)
	t.Log(msg)
	fmt.Println(msg)
}
