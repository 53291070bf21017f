// Types for kvmux-edge. The binding shapes follow the vendors' runtime documentation.

export interface TencentCredentials { secretId: string; secretKey: string }
export interface AliyunCredentials { accessKeyId: string; accessKeySecret: string }

export interface KvmuxOptions {
  /** Base URL of a running kvmux; default env KVMUX_URL, else http://127.0.0.1:9090. */
  url?: string;
  tencent?: Partial<TencentCredentials>;
  aliyun?: Partial<AliyunCredentials>;
}
export interface KvmuxSettings { url: string; tencent: TencentCredentials; aliyun: AliyunCredentials }

export function configure(options?: KvmuxOptions): KvmuxSettings;
export function settings(options?: KvmuxOptions): KvmuxSettings;
export const DEV_DEFAULTS: Readonly<KvmuxSettings>;

export class KvmuxApiError extends Error {
  /** The vendor's error code, e.g. "ResourceUnavailable.NamespaceNotFound". */
  code: string;
  status?: number;
  requestId?: string;
}
/** Kept for code that catches it; nothing throws it since kvmux's EdgeOne runtime route exists. */
export class KvmuxUnsupportedError extends Error {
  code: "KVMUX_UNSUPPORTED";
}

// ---- EdgeOne Pages KV ----

export type EdgeOneGetType = "text" | "json" | "arrayBuffer" | "stream";
export interface EdgeOneListOptions { prefix?: string; limit?: number; cursor?: string }
export interface EdgeOneListResult {
  keys: Array<{ key: string; name: string }>;
  complete: boolean;
  cursor: string;
}
export interface EdgeOneKV {
  get(key: string, type?: "text" | { type: "text" }): Promise<string | null>;
  get<T = unknown>(key: string, type: "json" | { type: "json" }): Promise<T | null>;
  get(key: string, type: "arrayBuffer" | { type: "arrayBuffer" }): Promise<ArrayBuffer | null>;
  get(key: string, type: "stream" | { type: "stream" }): Promise<ReadableStream<Uint8Array> | null>;
  /** At most 25 MB; binary and empty values are stored byte for byte. */
  put(key: string, value: string | ArrayBuffer | ArrayBufferView | ReadableStream): Promise<void>;
  delete(key: string): Promise<void>;
  list(options?: EdgeOneListOptions): Promise<EdgeOneListResult>;
}
export interface EdgeOneKVOptions extends KvmuxOptions { namespace: string; zoneId?: string }
export function createEdgeOneKV(options: EdgeOneKVOptions): EdgeOneKV;
export function installEdgeOneKV(
  bindings: Record<string, string | { namespace: string; zoneId?: string }>,
  options?: KvmuxOptions & { zoneId?: string },
): Record<string, EdgeOneKV>;
export const EDGEONE_KEY_PATTERN: RegExp;
export const EDGEONE_MAX_KEY_BYTES: number;
export const EDGEONE_MAX_VALUE_BYTES: number;
export const EDGEONE_MAX_LIST_LIMIT: number;
/** The `EdgeKVPut` action's 1 MB limit; the binding does not write through it. */
export const EDGEKVPUT_MAX_VALUE_BYTES: number;

// ---- ESA / DCDN Edge Routine EdgeKV ----

export interface EdgeKVOptions extends KvmuxOptions { namespace: string }
export class EdgeKV {
  constructor(options: EdgeKVOptions);
  readonly namespace: string;
  get(key: string, options?: { type?: "stream" }): Promise<ReadableStream<Uint8Array> | undefined>;
  get(key: string, options: { type: "text" }): Promise<string | undefined>;
  get<T = unknown>(key: string, options: { type: "json" }): Promise<T | undefined>;
  get(key: string, options: { type: "arrayBuffer" }): Promise<ArrayBuffer | undefined>;
  put(key: string, value: string | ReadableStream | ArrayBuffer | Response): Promise<void>;
  delete(key: string): Promise<boolean>;
}
export function installEdgeKV(options?: KvmuxOptions): typeof EdgeKV;
export const ESA_MAX_VALUE_BYTES: number;
