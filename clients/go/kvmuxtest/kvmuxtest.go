// Package kvmuxtest starts a kvmux gateway (Tencent EdgeKV, Alibaba ESA/DCDN KV and Huawei KVS on
// one port) for a Go test: a memory store on a free 127.0.0.1 port, stopped by t.Cleanup.
//
//	srv := kvmuxtest.Start(t)               // binary: $KVMUX_BIN, else kvmux on PATH
//	cfg.SetEndpoint(srv.Host()).SetProtocol("http")
//	srv.Reset(nil)                          // between tests
//
// The standard library only; the vendor SDKs are the test's own dependencies.
package kvmuxtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DevSecret is the secret of kvmux's built-in dev credentials (all reach account "dev").
const DevSecret = "kvmuxdevsecret"

// DevIDs are the built-in dev key ids per dialect.
var DevIDs = map[string]string{"tencent": "AKIDkvmuxdev", "aliyun": "LTAIkvmuxdev", "huawei": "HWkvmuxdev"}

type options struct {
	binary, config, storage string
	args, env               []string
	timeout                 time.Duration
}

// Option configures Start.
type Option func(*options)

// WithBinary runs this kvmux binary instead of $KVMUX_BIN or PATH's.
func WithBinary(path string) Option { return func(o *options) { o.binary = path } }

// WithConfig passes a kvmux.toml (default: none, the built-in dev defaults).
func WithConfig(path string) Option { return func(o *options) { o.config = path } }

// WithStorage sets --storage ("memory", the default, or a postgres:// URL).
func WithStorage(storage string) Option { return func(o *options) { o.storage = storage } }

// WithArgs appends more `kvmux serve` flags.
func WithArgs(args ...string) Option { return func(o *options) { o.args = append(o.args, args...) } }

// WithEnv adds KEY=VALUE entries to the process's environment.
func WithEnv(kv ...string) Option { return func(o *options) { o.env = append(o.env, kv...) } }

// WithTimeout bounds the start-up (default 10 s).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Server is a running kvmux.
type Server struct {
	url, host, version string
	cmd                *exec.Cmd
	dir                string
	done               chan struct{}
	stopOnce           sync.Once
	client             *http.Client
}

// FindBinary returns $KVMUX_BIN, else kvmux on PATH.
func FindBinary() (string, error) {
	if bin := os.Getenv("KVMUX_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("KVMUX_BIN: %w", err)
		}
		return bin, nil
	}
	bin, err := exec.LookPath("kvmux")
	if err != nil {
		return "", fmt.Errorf("kvmux is not on PATH and KVMUX_BIN is unset (install it: cargo install --locked --path crates/kvmux): %w", err)
	}
	return bin, nil
}

// Start starts kvmux and registers its Stop with t.Cleanup; it fails the test (t.Fatal) when
// kvmux does not start.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := StartServer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartServer starts kvmux without a testing.TB (e.g. in TestMain); the caller calls Stop.
func StartServer(opts ...Option) (*Server, error) {
	o := options{storage: "memory", timeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.binary == "" {
		bin, err := FindBinary()
		if err != nil {
			return nil, err
		}
		o.binary = bin
	}
	dir, err := os.MkdirTemp("", "kvmux-")
	if err != nil {
		return nil, err
	}
	ready := filepath.Join(dir, "ready.json")
	args := []string{"serve", "--listen", "127.0.0.1:0", "--ready-file", ready, "--storage", o.storage}
	if o.config != "" {
		cfg, err := filepath.Abs(o.config)
		if err != nil {
			return nil, err
		}
		args = append(args, "--config", cfg)
	}
	args = append(args, o.args...)
	logf, err := os.Create(filepath.Join(dir, "kvmux.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(o.binary, args...)
	cmd.Dir = dir // a config/kvmux.toml in the test's directory is not picked up
	cmd.Env = append(os.Environ(), o.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{cmd: cmd, dir: dir, done: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second}}
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(o.timeout)
	for {
		if b, err := os.ReadFile(ready); err == nil {
			var info struct {
				URL, Host, Version string
				Pid                int
			}
			if json.Unmarshal(b, &info) == nil && info.Pid == cmd.Process.Pid {
				s.url, s.host, s.version = info.URL, info.Host, info.Version
				return s, nil
			}
		}
		select {
		case <-s.done:
			log := s.Log()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("kvmux exited before it was ready (%s %s):\n%s", o.binary, strings.Join(args, " "), log)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log := s.Log()
			s.Stop()
			return nil, fmt.Errorf("kvmux wrote no ready file within %s:\n%s", o.timeout, log)
		}
	}
}

// URL is "http://127.0.0.1:PORT".
func (s *Server) URL() string { return s.url }

// Host is "127.0.0.1:PORT", what the SDKs' endpoint settings take.
func (s *Server) Host() string { return s.host }

// Pid is the kvmux process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Version is kvmux's version.
func (s *Server) Version() string { return s.version }

// Credentials returns the dev key id and secret of a dialect (tencent, aliyun, huawei).
func (s *Server) Credentials(dialect string) (id, secret string) {
	return DevIDs[strings.ToLower(dialect)], DevSecret
}

// Log returns kvmux's output so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "kvmux.log"))
	return string(b)
}

// Admin calls the admin API: body is marshalled to JSON (nil: "{}" for writes); the reply is
// decoded into a generic value. A status other than 2xx is an error carrying the reply.
func (s *Server) Admin(method, path string, body any) (any, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, err
		}
	} else if method != http.MethodGet {
		payload = []byte("{}")
	}
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("kvmux %s %s: %d %s", method, path, resp.StatusCode, text)
	}
	var out any
	if len(text) > 0 {
		if err := json.Unmarshal(text, &out); err != nil {
			return string(text), nil
		}
	}
	return out, nil
}

// Scope narrows Reset; empty fields mean all.
type Scope struct {
	Account   string `json:"account,omitempty"`
	Dialect   string `json:"dialect,omitempty"`
	Container string `json:"container,omitempty"`
}

// Reset drops all data (scope nil) or only a scope's.
func (s *Server) Reset(scope *Scope) error {
	if scope == nil {
		scope = &Scope{}
	}
	_, err := s.Admin(http.MethodPost, "/_kvmux/reset", scope)
	return err
}

// Checkpoint saves the whole state under name.
func (s *Server) Checkpoint(name string) error {
	_, err := s.Admin(http.MethodPut, "/_kvmux/checkpoints/"+url.PathEscape(name), nil)
	return err
}

// Restore brings back the state of a checkpoint exactly (items, TTLs, quotas, the clock).
func (s *Server) Restore(name string) error {
	_, err := s.Admin(http.MethodPost, "/_kvmux/checkpoints/"+url.PathEscape(name)+"/restore", nil)
	return err
}

// AdvanceClock moves the engine clock forward; returns the engine's new unix time.
func (s *Server) AdvanceClock(seconds int64) (int64, error) {
	out, err := s.Admin(http.MethodPost, "/_kvmux/clock/advance", map[string]int64{"seconds": seconds})
	if err != nil {
		return 0, err
	}
	now, _ := out.(map[string]any)["now"].(float64)
	return int64(now), nil
}

// AddCredentials adds a key pair at runtime, reaching account.
func (s *Server) AddCredentials(dialect, id, secret, account string) error {
	_, err := s.Admin(http.MethodPost, "/_kvmux/credentials", map[string]string{
		"dialect": strings.ToLower(dialect), "id": id, "secret": secret, "account": account})
	return err
}

// Stop sends SIGTERM, waits (SIGKILL after 15 s) and removes the temp dir. Safe to call twice.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
		os.RemoveAll(s.dir)
	})
}
