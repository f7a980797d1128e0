#!/usr/bin/env node
// Runs commands with a cluster-aware Node client (ioredis `Cluster` or
// node-redis `createCluster`) and prints one JSON line with the outcome.
//
// stdin: {"client": "ioredis" | "node-redis", "nodes": [[host, port], ...],
//         "username"?, "password"?, "resp"?: 2 | 3 (node-redis only),
//         "replicas"?: bool (read from replicas: ioredis scaleReads "slave",
//                           node-redis useReplicas),
//         "commands": [["SET", "k", "v"], ...],
//         "spubsub"?: {"channel", "message"}  (SSUBSCRIBE, then SPUBLISH, wait for it),
//         "timeoutMs"?: int}
// stdout: {"connected": bool, "error": string|null,
//          "results": [{"ok": value} | {"error": message}, ...],
//          "received": string|null, "events": [string, ...]}
// Exit status 0 whenever the JSON line was printed.
"use strict";

const fs = require("fs");
const { plain, errText, finish, crashed } = require("./runner_common");


function withTimeout(promise, ms, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)),
  ]);
}

async function ioredisClient(spec, out) {
  const Redis = require("ioredis");
  const cluster = new Redis.Cluster(
    spec.nodes.map(([host, port]) => ({ host, port })),
    {
      lazyConnect: true,
      scaleReads: spec.replicas ? "slave" : "master",
      enableOfflineQueue: true,
      shardedSubscribers: Boolean(spec.spubsub),
      redisOptions: { username: spec.username, password: spec.password, connectTimeout: 5000 },
      clusterRetryStrategy: () => null,
    }
  );
  cluster.on("error", (e) => out.events.push(`error: ${errText(e)}`));
  await cluster.connect();
  return {
    call: (name, ...args) => cluster.call(name, ...args),
    spubsub: async ({ channel, message }) => {
      const got = new Promise((resolve) => cluster.on("smessage", (_ch, msg) => resolve(String(msg))));
      await cluster.ssubscribe(channel);
      await cluster.spublish(channel, message);
      return got;
    },
    close: () => cluster.disconnect(),
  };
}

async function nodeRedisClient(spec, out) {
  const { createCluster } = require("redis");
  const cluster = createCluster({
    rootNodes: spec.nodes.map(([host, port]) => ({ socket: { host, port } })),
    defaults: {
      username: spec.username,
      password: spec.password,
      RESP: spec.resp || 2,
      socket: { connectTimeout: 5000, reconnectStrategy: false },
    },
    useReplicas: Boolean(spec.replicas),
  });
  cluster.on("error", (e) => out.events.push(`error: ${errText(e)}`));
  await cluster.connect();
  return {
    // The first key decides the node, as node-redis's sendCommand asks.
    call: (name, ...args) => {
      const key = args.length ? String(args[0]) : undefined;
      const readonly = ["GET", "MGET", "EXISTS", "STRLEN", "TTL"].includes(name.toUpperCase());
      return cluster.sendCommand(key, readonly, [name, ...args.map(String)]);
    },
    spubsub: async ({ channel, message }) => {
      let resolve;
      const got = new Promise((r) => (resolve = r));
      await cluster.sSubscribe(channel, (msg) => resolve(String(msg)));
      await cluster.sPublish(channel, message);
      return got;
    },
    close: () => cluster.destroy(),
  };
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(0, "utf8"));
  const out = { connected: false, error: null, results: [], received: null, events: [] };
  const timeoutMs = spec.timeoutMs || 15000;
  const guard = setTimeout(() => {
    out.error = out.error || `runner timed out after ${timeoutMs} ms`;
    finish(out);
  }, timeoutMs);

  let client = null;
  try {
    client = spec.client === "node-redis" ? await nodeRedisClient(spec, out) : await ioredisClient(spec, out);
    out.connected = true;
  } catch (e) {
    out.error = errText(e);
  }
  if (client) {
    for (const [name, ...args] of spec.commands || []) {
      try {
        out.results.push({ ok: plain(await client.call(name, ...args)) });
      } catch (e) {
        out.results.push({ error: errText(e) });
      }
    }
    if (spec.spubsub) {
      try {
        out.received = await withTimeout(client.spubsub(spec.spubsub), 5000, "sharded message");
      } catch (e) {
        out.error = errText(e);
      }
    }
    try {
      await client.close();
    } catch (e) {
      out.events.push(`close: ${errText(e)}`);
    }
  }
  clearTimeout(guard);
  finish(out);
}

main().catch(crashed);
