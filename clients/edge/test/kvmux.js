// A kvmux for one test file: KVMUX_URL when set (a running gateway, left alone), otherwise the
// binary at KVMUX_BIN (default: the workspace's target/debug/kvmux) started on a free 127.0.0.1
// port with a temporary config and data dir, waited for with a bounded health poll, and stopped by
// its PID. Also hands out the pinned vendor SDK clients pointed at the same gateway.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.unref();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

async function healthy(url) {
  try {
    const res = await fetch(`${url}/_kvmux/health`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Starts (or finds) kvmux. Resolves to `{ url, endpoint, stop }`; `stop()` ends only the process
 * this call started, by its PID, and removes its temporary directory.
 */
export async function startKvmux() {
  if (process.env.KVMUX_URL) {
    const url = process.env.KVMUX_URL.replace(/\/+$/, "");
    return { url, endpoint: new URL(url).host, stop: async () => {} };
  }
  const bin = process.env.KVMUX_BIN ?? resolve(here, "../../../target/debug/kvmux");
  if (!existsSync(bin)) {
    throw new Error(`no kvmux binary at ${bin}: build it (cargo build -p kvmux), or set KVMUX_BIN or KVMUX_URL`);
  }
  const dir = mkdtempSync(join(tmpdir(), "kvmux-edge-"));
  const port = await freePort();
  const config = join(dir, "kvmux.toml");
  writeFileSync(config, `listen = "127.0.0.1:${port}"\ndata_dir = "${join(dir, "data")}"\n`);
  const log = join(dir, "kvmux.log");
  const { openSync } = await import("node:fs");
  const fd = openSync(log, "w");
  const child = spawn(bin, ["serve", "--config", config], { stdio: ["ignore", fd, fd] });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  let up = false;
  while (Date.now() < deadline && child.exitCode === null) {
    if (await healthy(url)) {
      up = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      process.kill(child.pid, "SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) process.kill(child.pid, "SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  };
  if (!up) {
    const tail = readFileSync(log, "utf8").split("\n").slice(-20).join("\n");
    await stop();
    throw new Error(`kvmux did not become healthy within 30 s:\n${tail}`);
  }
  return { url, endpoint: `127.0.0.1:${port}`, stop };
}

/** The pinned tencentcloud-sdk-nodejs-teo client (dev credentials), as a user's CI script builds it. */
export function teoClient(endpoint) {
  const { teo } = require("tencentcloud-sdk-nodejs-teo");
  return new teo.v20220901.Client({
    credential: { secretId: "AKIDkvmuxdev", secretKey: "kvmuxdevsecret" },
    region: "",
    profile: { httpProfile: { endpoint, protocol: "http://" } },
  });
}

/** The pinned @alicloud/esa20240910 client (dev credentials). */
export function esaClient(endpoint) {
  const Esa = require("@alicloud/esa20240910");
  const { $OpenApiUtil } = require("@alicloud/openapi-core");
  const client = new Esa.default(
    new $OpenApiUtil.Config({
      accessKeyId: "LTAIkvmuxdev",
      accessKeySecret: "kvmuxdevsecret",
      endpoint,
      protocol: "http",
    }),
  );
  return { client, Esa };
}
