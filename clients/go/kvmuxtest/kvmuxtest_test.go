package kvmuxtest_test

import (
	"net/http"
	"testing"

	"kvmux.dev/kvmuxtest"
)

// The admin methods without any SDK (the vendor SDK tests are in ../sdktest).
func TestAdminMethods(t *testing.T) {
	srv := kvmuxtest.Start(t)
	if srv.URL() != "http://"+srv.Host() {
		t.Fatalf("url %q host %q", srv.URL(), srv.Host())
	}
	if err := srv.Checkpoint("empty"); err != nil {
		t.Fatal(err)
	}
	now, err := srv.AdvanceClock(3600)
	if err != nil || now == 0 {
		t.Fatalf("advance: %d %v", now, err)
	}
	if err := srv.Restore("empty"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reset(&kvmuxtest.Scope{Dialect: "huawei"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddCredentials("aliyun", "LTAIother", "s3cret", "other"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restore("no-such-checkpoint"); err == nil {
		t.Fatal("restoring a missing checkpoint succeeded")
	}
	if id, secret := srv.Credentials("tencent"); id != "AKIDkvmuxdev" || secret != "kvmuxdevsecret" {
		t.Fatal(id, secret)
	}
	out, err := srv.Admin(http.MethodGet, "/_kvmux/health", nil)
	if err != nil || out.(map[string]any)["status"] != "ok" {
		t.Fatalf("health %v %v", out, err)
	}
	srv.Stop()
	srv.Stop()
}
