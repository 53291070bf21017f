"use strict";
// kvmux for test suites: startKvmux() starts the kvmux binary shipped in this package (or
// $KVMUX_BIN / options.binary) on a free 127.0.0.1 port with the memory store, waits for its
// ready file, and returns a handle with the admin API as methods. Plain CommonJS; ESM code can
// `import { startKvmux } from "kvmux"` (named exports are detected).
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

/** The public dev credentials of kvmux's built-in config (all reach account "dev"). */
const DEV_SECRET = "kvmuxdevsecret";
const DEV_IDS = { tencent: "AKIDkvmuxdev", aliyun: "LTAIkvmuxdev", huawei: "HWkvmuxdev" };

/** Where this package keeps the binary for a platform: bin/<platform>-<arch>/kvmux[.exe]. */
function bundledBinary(platform = process.platform, arch = process.arch) {
  const name = platform === "win32" ? "kvmux.exe" : "kvmux";
  return path.join(__dirname, "bin", `${platform}-${arch}`, name);
}

/** The binary to run: options.binary, else $KVMUX_BIN, else the one bundled for this platform. */
function findBinary(binary) {
  const chosen = binary || process.env.KVMUX_BIN;
  if (chosen) {
    if (!fs.existsSync(chosen)) throw new Error(`kvmux binary not found: ${chosen}`);
    return chosen;
  }
  const bundled = bundledBinary();
  if (!fs.existsSync(bundled)) {
    const have = fs.existsSync(path.join(__dirname, "bin"))
      ? fs.readdirSync(path.join(__dirname, "bin")).join(", ") : "none";
    throw new Error(`this kvmux package has no binary for ${process.platform}-${process.arch} ` +
      `(it has: ${have}); set KVMUX_BIN or pass { binary } to a kvmux built for this machine`);
  }
  try {
    fs.accessSync(bundled, fs.constants.X_OK);
  } catch {
    fs.chmodSync(bundled, 0o755); // a tarball unpacked without its mode bits
  }
  return bundled;
}

function dialectName(dialect) {
  const d = String(dialect).toLowerCase();
  if (!(d in DEV_IDS)) throw new Error(`unknown dialect ${dialect}: one of ${Object.keys(DEV_IDS).join(", ")}`);
  return d;
}

class KvmuxError extends Error {
  constructor(message, status, body) {
    super(message);
    this.name = "KvmuxError";
    this.status = status;
    this.body = body;
  }
}

/**
 * Starts kvmux. options: binary (path), config (a kvmux.toml path; default none: the built-in
 * dev defaults), storage ("memory", default; or a postgres:// URL), args (more `serve` flags),
 * env (extra environment), timeoutMs (start-up bound, default 10000).
 */
async function startKvmux(options = {}) {
  const binary = findBinary(options.binary);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kvmux-"));
  const ready = path.join(dir, "ready.json");
  const logFile = path.join(dir, "kvmux.log");
  const args = ["serve", "--listen", "127.0.0.1:0", "--ready-file", ready,
    "--storage", options.storage || "memory"];
  if (options.config) args.push("--config", path.resolve(options.config));
  if (options.args) args.push(...options.args);
  const log = fs.openSync(logFile, "w");
  // Run in the temp dir, so that a config/kvmux.toml in the test's cwd is not picked up.
  const proc = spawn(binary, args, {
    cwd: dir,
    env: { ...process.env, ...(options.env || {}) },
    stdio: ["ignore", log, log],
  });
  fs.closeSync(log);
  let exited = null;
  const exit = new Promise((resolve) => proc.once("exit", (code, signal) => {
    exited = { code, signal };
    resolve(exited);
  }));
  const spawnError = new Promise((_, reject) => proc.once("error", reject));
  spawnError.catch(() => {});
  const readLog = () => { try { return fs.readFileSync(logFile, "utf8"); } catch { return ""; } };
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });

  const deadline = Date.now() + (options.timeoutMs || 10000);
  let info;
  for (;;) {
    try {
      info = JSON.parse(fs.readFileSync(ready, "utf8"));
      if (info.pid === proc.pid) break;
    } catch { /* not written yet */ }
    if (exited || Date.now() > deadline) {
      const why = exited ? `exited (${exited.signal || exited.code})` : "wrote no ready file in time";
      const text = readLog();
      if (!exited) { proc.kill("SIGKILL"); await exit; }
      cleanup();
      throw new Error(`kvmux ${why}: ${binary} ${args.join(" ")}\n${text.slice(-4000)}`);
    }
    await Promise.race([new Promise((r) => setTimeout(r, 5)), spawnError]);
  }

  async function admin(method, urlPath, body) {
    const res = await fetch(info.url + urlPath, {
      method,
      headers: { "Content-Type": "application/json" },
      body: body === undefined ? (method === "GET" ? undefined : "{}") : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed;
    try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
    if (!res.ok) throw new KvmuxError(`${method} ${urlPath}: ${res.status} ${text}`, res.status, parsed);
    return parsed;
  }
  const enc = encodeURIComponent;
  let stopped = null;

  const server = {
    url: info.url,
    host: info.host,
    pid: proc.pid,
    version: info.version,
    /** [id, secret] of the built-in dev credentials of a dialect (account "dev"). */
    credentials(dialect) { return [DEV_IDS[dialectName(dialect)], DEV_SECRET]; },
    /** Drops all data, or only a scope: { account, dialect, container }. */
    reset(scope = {}) { return admin("POST", "/_kvmux/reset", scope); },
    checkpoint(name) { return admin("PUT", `/_kvmux/checkpoints/${enc(name)}`); },
    restore(name) { return admin("POST", `/_kvmux/checkpoints/${enc(name)}/restore`); },
    /** Moves the engine clock forward; resolves to the engine's new unix time. */
    async advanceClock(seconds) {
      return (await admin("POST", "/_kvmux/clock/advance", { seconds })).now;
    },
    /** Adds a key pair at runtime: addCredentials(dialect, id, secret, account). */
    addCredentials(dialect, id, secret, account) {
      return admin("POST", "/_kvmux/credentials", { dialect: dialectName(dialect), id, secret, account });
    },
    health() { return admin("GET", "/_kvmux/health"); },
    admin,
    /** kvmux's output so far (stdout and stderr). */
    log: readLog,
    /** SIGTERM, then SIGKILL after 15 s; resolves once the process is gone. Idempotent. */
    stop() {
      if (!stopped) {
        stopped = (async () => {
          if (!exited) {
            proc.kill("SIGTERM");
            const timer = setTimeout(() => proc.kill("SIGKILL"), 15000);
            await exit;
            clearTimeout(timer);
          }
          cleanup();
        })();
      }
      return stopped;
    },
  };
  return server;
}

module.exports = { startKvmux, findBinary, bundledBinary, KvmuxError, DEV_IDS, DEV_SECRET };
