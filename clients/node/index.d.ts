export type Dialect = "tencent" | "aliyun" | "huawei";

export interface StartOptions {
  /** The kvmux binary; default $KVMUX_BIN, else the one in this package (bin/<platform>-<arch>/kvmux). */
  binary?: string;
  /** A kvmux.toml; default none (the built-in dev defaults: all dialects, the dev credentials). */
  config?: string;
  /** "memory" (default) or a postgres:// URL. */
  storage?: string;
  /** More `kvmux serve` flags. */
  args?: string[];
  /** Extra environment for the process. */
  env?: Record<string, string>;
  /** Start-up bound in milliseconds (default 10000). */
  timeoutMs?: number;
}

export interface ResetScope {
  account?: string;
  dialect?: Dialect;
  container?: string;
}

export interface KvmuxServer {
  /** "http://127.0.0.1:PORT" */
  readonly url: string;
  /** "127.0.0.1:PORT": what the SDKs' endpoint settings take. */
  readonly host: string;
  readonly pid: number;
  readonly version: string;
  /** [id, secret] of the dev credentials of a dialect (account "dev"). */
  credentials(dialect: Dialect): [string, string];
  reset(scope?: ResetScope): Promise<unknown>;
  checkpoint(name: string): Promise<unknown>;
  restore(name: string): Promise<unknown>;
  /** Resolves to the engine's new unix time. */
  advanceClock(seconds: number): Promise<number>;
  addCredentials(dialect: Dialect, id: string, secret: string, account: string): Promise<unknown>;
  health(): Promise<{ status: string; [k: string]: unknown }>;
  admin(method: string, path: string, body?: unknown): Promise<any>;
  log(): string;
  stop(): Promise<void>;
}

export function startKvmux(options?: StartOptions): Promise<KvmuxServer>;
export function findBinary(binary?: string): string;
export function bundledBinary(platform?: string, arch?: string): string;
export class KvmuxError extends Error {
  status: number;
  body: unknown;
}
export const DEV_IDS: Record<Dialect, string>;
export const DEV_SECRET: string;
