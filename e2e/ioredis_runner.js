#!/usr/bin/env node
// Runs Redis commands with ioredis and prints one JSON line with the outcome.
//
// stdin: {"host", "port", "username"?, "password"?, "db"?, "tls"?: {ca, cert?, key?, servername?},
//         "options"?: {...passed to new Redis()}, "pipeline"?: bool, "timeoutMs"?: int,
//         "commands": [["SET", "k", "v"], ["GET", "k"], ...]}
// stdout: {"connected": bool, "error": string|null,
//          "results": [{"ok": value} | {"error": message}, ...], "events": [string, ...]}
// Exit status 0 whenever the JSON line was printed (even if commands failed).
"use strict";

const fs = require("fs");
const { plain, errText, finish, crashed } = require("./runner_common");
const Redis = require("ioredis");


async function main() {
  const spec = JSON.parse(fs.readFileSync(0, "utf8"));
  const out = { connected: false, error: null, results: [], events: [] };
  const timeoutMs = spec.timeoutMs || 15000;
  const guard = setTimeout(() => {
    out.error = out.error || `runner timed out after ${timeoutMs} ms`;
    finish(out);
  }, timeoutMs);

  const opts = {
    host: spec.host,
    port: spec.port,
    lazyConnect: true,
    // Surface failures instead of retrying or queueing forever.
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    reconnectOnError: () => false,
    enableOfflineQueue: false,
    connectTimeout: 5000,
    ...(spec.options || {}),
  };
  if (spec.username !== undefined) opts.username = spec.username;
  if (spec.password !== undefined) opts.password = spec.password;
  if (spec.db !== undefined) opts.db = spec.db;
  if (spec.tls) {
    opts.tls = {
      ca: fs.readFileSync(spec.tls.ca),
      servername: spec.tls.servername || "redis.test",
    };
    if (spec.tls.cert) {
      opts.tls.cert = fs.readFileSync(spec.tls.cert);
      opts.tls.key = fs.readFileSync(spec.tls.key);
    }
  }

  const redis = new Redis(opts);
  redis.on("error", (e) => out.events.push(`error: ${errText(e)}`));
  redis.on("end", () => out.events.push("end"));

  try {
    await redis.connect();
    out.connected = true;
  } catch (e) {
    out.error = errText(e);
  }

  if (out.connected) {
    const cmds = spec.commands || [];
    if (spec.pipeline) {
      try {
        const res = await cmds.reduce((p, [name, ...args]) => p.call(name, ...args), redis.pipeline()).exec();
        for (const [err, val] of res || []) {
          out.results.push(err ? { error: errText(err) } : { ok: plain(val) });
        }
      } catch (e) {
        out.error = errText(e);
      }
    } else {
      for (const [name, ...args] of cmds) {
        try {
          out.results.push({ ok: plain(await redis.call(name, ...args)) });
        } catch (e) {
          out.results.push({ error: errText(e) });
        }
      }
    }
  }

  clearTimeout(guard);
  redis.disconnect();
  // Exit now: ioredis may keep a half-closed socket alive for up to 2 s.
  finish(out);
}

main().catch(crashed);
