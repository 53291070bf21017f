// kvmux-edge: the EdgeOne Pages KV and ESA Edge Routine EdgeKV runtime bindings, backed by kvmux.
export { configure, settings, DEV_DEFAULTS, KvmuxApiError, KvmuxUnsupportedError } from "./transport.js";
export {
  createEdgeOneKV,
  installEdgeOneKV,
  EDGEONE_KEY_PATTERN,
  EDGEONE_MAX_KEY_BYTES,
  EDGEONE_MAX_VALUE_BYTES,
  EDGEONE_MAX_LIST_LIMIT,
  EDGEKVPUT_MAX_VALUE_BYTES,
} from "./edgeone.js";
export { EdgeKV, installEdgeKV, ESA_MAX_VALUE_BYTES } from "./esa.js";
