#!/usr/bin/env node
"use strict";
// `npx kvmux ...`: runs the bundled kvmux binary with the given arguments.
const { spawnSync } = require("node:child_process");
const { findBinary } = require("./index.js");

const result = spawnSync(findBinary(), process.argv.slice(2), { stdio: "inherit" });
if (result.error) {
  console.error(result.error.message);
  process.exit(1);
}
process.exit(result.status === null ? 1 : result.status);
