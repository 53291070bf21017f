// Real-SDK test: the official Go KVS client (huaweicloud-sdk-go-v3/services/kvs) against kvmux.
// The gateway address comes from KVMUX_ENDPOINT; the test fails when it is unset.
//
// The SDK addresses a store as http://<store>.<endpoint host>, which does not resolve, so the
// client's public WithDialContext option sends every connection to the gateway while the request
// keeps its signed Host header (spec §8.2 B). KvsCredentials signs with UNSIGNED-PAYLOAD.
package huawei

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"
	kvs "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/kvs/v1"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/kvs/v1/model"
	"go.mongodb.org/mongo-driver/bson"
)

func endpoint(t *testing.T) string {
	t.Helper()
	ep := os.Getenv("KVMUX_ENDPOINT")
	if ep == "" {
		t.Fatal("KVMUX_ENDPOINT is not set (e.g. 127.0.0.1:9090)")
	}
	return ep
}

func newClient(t *testing.T, sk string) *kvs.KvsClient {
	t.Helper()
	ep := endpoint(t)
	cred, err := kvs.NewKvsCredentialsBuilder().
		WithAk("HWkvmuxdev").
		WithSk(sk).
		WithProjectId("kvmuxproject").
		SafeBuild()
	if err != nil {
		t.Fatalf("credentials: %v", err)
	}
	httpConfig := config.DefaultHttpConfig().
		WithTimeout(10 * time.Second).
		WithDialContext(func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, ep)
		})
	hc, err := kvs.KvsClientBuilder().
		WithEndpoints([]string{"http://" + ep}).
		WithCredential(cred).
		WithHttpConfig(httpConfig).
		SafeBuild()
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return kvs.NewKvsClient(hc)
}

func str(s string) *string { return &s }

func TestCreatePutGetScanAndErrors(t *testing.T) {
	client := newClient(t, "kvmuxdevsecret")
	// One store for every run (an account may hold only 25) and a fresh table per run, deleted
	// at the end, so reruns against one gateway neither collide nor exhaust a quota.
	store := "kvmux-sdk-go"
	table := fmt.Sprintf("files%d", time.Now().UnixNano())

	sortFields := []model.Field{{Name: "filename"}}
	created, err := client.CreateTable(&model.CreateTableRequest{
		StoreName: &store,
		Body: &model.CreateTableRequestBody{
			TableName: table,
			PrimaryKeySchema: &model.PrimaryKeySchema{
				ShardKeyFields: []model.Field{{Name: "owner"}},
				SortKeyFields:  &sortFields,
			},
		},
	})
	if err != nil {
		t.Fatalf("create-table: %v", err)
	}
	defer func() {
		if _, err := client.DeleteTable(&model.DeleteTableRequest{StoreName: &store, Body: &model.DeleteTableRequestBody{TableName: table}}); err != nil {
			t.Errorf("delete-table: %v", err)
		}
	}()
	if created.TableName == nil || *created.TableName != table {
		t.Fatalf("create-table echoed %v", created.TableName)
	}

	for i, name := range []string{"a.txt", "b.txt", "c.txt"} {
		doc := bson.D{{Key: "owner", Value: "gopher"}, {Key: "filename", Value: name}, {Key: "size", Value: int32(i + 1)}}
		if _, err := client.PutKv(&model.PutKvRequest{StoreName: &store, Body: &model.PutKvRequestBody{TableName: table, KvDoc: &doc}}); err != nil {
			t.Fatalf("put-kv %s: %v", name, err)
		}
	}

	key := bson.D{{Key: "owner", Value: "gopher"}, {Key: "filename", Value: "b.txt"}}
	got, err := client.GetKv(&model.GetKvRequest{StoreName: &store, Body: &model.GetKvRequestBody{TableName: table, PrimaryKey: &key}})
	if err != nil {
		t.Fatalf("get-kv: %v", err)
	}
	if got.KvDoc == nil || got.KvDoc.Map()["size"] != int32(2) || got.KvDoc.Map()["filename"] != "b.txt" {
		t.Fatalf("get-kv returned %v", got.KvDoc)
	}

	limit := int32(2)
	page, err := client.ScanKv(&model.ScanKvRequest{StoreName: &store, Body: &model.ScanKvRequestBody{TableName: table, Limit: &limit}})
	if err != nil {
		t.Fatalf("scan-kv: %v", err)
	}
	if page.ReturnedCount == nil || *page.ReturnedCount != 2 || page.ReturnedKvItems == nil || len(*page.ReturnedKvItems) != 2 {
		t.Fatalf("scan-kv page 1: %v", page)
	}
	if page.CursorKey == nil || page.CursorKey.Map()["filename"] != "c.txt" {
		t.Fatalf("scan-kv cursor: %v", page.CursorKey)
	}
	rest, err := client.ScanKv(&model.ScanKvRequest{StoreName: &store, Body: &model.ScanKvRequestBody{TableName: table, Limit: &limit, StartKey: page.CursorKey}})
	if err != nil {
		t.Fatalf("scan-kv page 2: %v", err)
	}
	if rest.ReturnedKvItems == nil || len(*rest.ReturnedKvItems) != 1 || rest.CursorKey != nil {
		t.Fatalf("scan-kv page 2: %v", rest)
	}
	if doc := (*rest.ReturnedKvItems)[0].KvDoc; doc == nil || doc.Map()["filename"] != "c.txt" {
		t.Fatalf("scan-kv page 2 item: %v", doc)
	}

	missing := bson.D{{Key: "owner", Value: "gopher"}, {Key: "filename", Value: "zzz"}}
	_, err = client.GetKv(&model.GetKvRequest{StoreName: &store, Body: &model.GetKvRequestBody{TableName: table, PrimaryKey: &missing}})
	var sre *sdkerr.ServiceResponseError
	if !errors.As(err, &sre) {
		t.Fatalf("get-kv of a missing key: want a ServiceResponseError, got %v", err)
	}
	if sre.StatusCode != 404 || sre.ErrorCode != "KVS.00001016" || sre.RequestId == "" {
		t.Fatalf("get-kv of a missing key: %+v", sre)
	}
}

func TestWrongSecretIsAPIGW0301(t *testing.T) {
	client := newClient(t, "wrong-secret")
	version := int32(1)
	_, err := client.CheckHealth(&model.CheckHealthRequest{Body: &model.CheckHealthRequestBody{Version: &version}})
	var sre *sdkerr.ServiceResponseError
	if !errors.As(err, &sre) {
		t.Fatalf("want a ServiceResponseError, got %v", err)
	}
	if sre.StatusCode != 401 || sre.ErrorCode != "APIGW.0301" {
		t.Fatalf("wrong secret: %+v", sre)
	}
}
