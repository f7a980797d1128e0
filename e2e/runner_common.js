// Helpers shared by the Node runners (ioredis_runner.js, cluster_runner.js):
// replies as plain JSON values, error texts, and the one-line JSON output.
"use strict";

/** A reply as a plain JSON value (Buffers as UTF-8, Maps as objects). */
function plain(v) {
  if (Buffer.isBuffer(v)) return v.toString("utf8");
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(plain(k)), plain(x)]));
  if (v && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) o[k] = plain(v[k]);
    return o;
  }
  return v;
}

function errText(e) {
  return e && e.message ? e.message : String(e);
}

/** Prints `out` as one JSON line, then exits 0 (a client may keep a socket alive). */
function finish(out) {
  process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(0));
}

/** For main().catch: the runner itself failed. */
function crashed(e) {
  finish({ connected: false, error: `runner crashed: ${errText(e)}`, results: [], events: [] });
}

module.exports = { plain, errText, finish, crashed };
