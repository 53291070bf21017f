// The vendor SDK clients the launcher tests drive, pointed at a started kvmux: the pinned
// tencentcloud-sdk-nodejs-teo and @alicloud/esa20240910 of tests/sdk/node (no Huawei KVS Node SDK
// exists). Only the endpoint and the scheme change.
"use strict";
const { teo } = require("tencentcloud-sdk-nodejs-teo");
const Esa = require("@alicloud/esa20240910");
const { $OpenApiUtil } = require("@alicloud/openapi-core");

function tencentClient(kvmux, [secretId, secretKey] = kvmux.credentials("tencent")) {
  return new teo.v20220901.Client({
    credential: { secretId, secretKey },
    region: "",
    profile: { httpProfile: { endpoint: kvmux.host, protocol: "http://" } },
  });
}

function esaClient(kvmux, [accessKeyId, accessKeySecret] = kvmux.credentials("aliyun")) {
  return new Esa.default(new $OpenApiUtil.Config({
    accessKeyId, accessKeySecret, endpoint: kvmux.host, protocol: "http",
  }));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

module.exports = { tencentClient, esaClient, Esa, median };
