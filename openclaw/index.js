// OpenClaw plugin "blockrun": ClawRouter's chat commands on every OpenClaw chat surface.
//
// Each command is answered by the running clawrouter proxy (POST /v1/clawrouter/commands/<name>
// on 127.0.0.1), which runs the same Python handlers as `clawrouter chat`. The host's sender
// and authorisation flag are passed on, so the proxy refuses unauthorised senders; images come
// back as stored file paths and are attached (mediaUrl), never sent as localhost links.
// When /health does not answer and `proxyCommand` is configured, the plugin starts the proxy
// and waits (bounded) for it. Plain JavaScript, no build step, no dependencies.

import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ID = "blockrun";
const DEFAULT_PORT = 8402;
const HEALTH_TIMEOUT_MS = 1500;
const START_TIMEOUT_MS = 30000;
const COMMAND_TIMEOUT_MS = 300000; // an image can take minutes upstream

// [proxy command, description]; each is also registered as cr-<name>, because channels
// reserve some names (Telegram reserves /imagegen).
const COMMANDS = [
  ["stats", "ClawRouter usage, cost and savings (/stats [days])"],
  ["wallet", "ClawRouter payment wallet: address, balance, how to fund it"],
  ["exclude", "Keep models out of ClawRouter's routing (list/add/remove/clear)"],
  ["imagegen", "Generate an image with ClawRouter (paid per image in USDC)"],
  ["img2img", "Edit an image with a prompt through ClawRouter (paid per image)"],
];

function baseUrl(config) {
  const port = Number.isInteger(config.port) && config.port > 0 ? config.port : DEFAULT_PORT;
  return `http://127.0.0.1:${port}`;
}

// "degraded" (team mode with Redis unreachable) is still a running proxy: starting another
// one on the same port would only fail.
async function healthy(base) {
  try {
    const response = await fetch(`${base}/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    const body = await response.json();
    return response.ok && body?.service === "clawrouter" && (body?.status === "ok" || body?.status === "degraded");
  } catch {
    return false;
  }
}

// The proxy reads the same settings OpenClaw validated: they are handed over as a config file.
function configFile(config) {
  const dir = mkdtempSync(join(tmpdir(), "blockrun-openclaw-"));
  const file = join(dir, "openclaw.json");
  writeFileSync(file, JSON.stringify({ plugins: { entries: { [ID]: { config } } } }), { mode: 0o600 });
  return file;
}

class Proxy {
  constructor(config, logger) {
    this.config = config;
    this.logger = logger;
    this.base = baseUrl(config);
    this.child = null;
    this.starting = null;
  }

  // Resolves once /health answers; starts the proxy first when it does not and a command is set.
  async ensure() {
    if (await healthy(this.base)) return;
    const command = this.config.proxyCommand;
    if (!Array.isArray(command) || command.length === 0) {
      throw new Error(`nothing answers at ${this.base}; start it with \`clawrouter serve\` ` +
        `(or set plugins.entries.${ID}.config.proxyCommand)`);
    }
    this.starting ??= this.start(command).finally(() => { this.starting = null; });
    await this.starting;
  }

  async start(command) {
    if (this.child === null || this.child.exitCode !== null) {
      this.logger?.info?.(`[${ID}] starting the clawrouter proxy: ${command.join(" ")}`);
      const child = spawn(command[0], command.slice(1), {
        stdio: "ignore",
        env: { ...process.env, OPENCLAW_CONFIG: configFile(this.config) },
      });
      child.on("error", (error) => this.logger?.error?.(`[${ID}] proxy command failed: ${error.message}`));
      this.child = child;
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (await healthy(this.base)) return;
      if (this.child.exitCode !== null) {
        throw new Error(`the proxy command exited with code ${this.child.exitCode}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`the proxy did not answer at ${this.base} within ${START_TIMEOUT_MS / 1000} s`);
  }

  stop() {
    if (this.child !== null && this.child.exitCode === null) this.child.kill("SIGTERM");
    this.child = null;
  }

  async command(name, ctx) {
    try {
      await this.ensure();
    } catch (error) {
      return { text: `⚠️ ClawRouter is not running: ${error.message}`, isError: true };
    }
    let response;
    try {
      response = await fetch(`${this.base}/v1/clawrouter/commands/${name}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          args: typeof ctx.args === "string" ? ctx.args : "",
          sender: ctx.senderId ?? null,
          channel: ctx.channel ?? null,
          authorized: ctx.isAuthorizedSender === true,
        }),
        signal: AbortSignal.timeout(COMMAND_TIMEOUT_MS),
      });
    } catch (error) {
      return { text: `⚠️ ClawRouter did not answer /${name}: ${error.message}`, isError: true };
    }
    const body = await response.json().catch(() => null);
    if (!response.ok || body === null || typeof body.text !== "string") {
      const why = body?.error?.message ?? `HTTP ${response.status}`;
      return { text: `⚠️ /${name} failed: ${why}`, isError: true };
    }
    const media = Array.isArray(body.media) ? body.media.filter((p) => typeof p === "string") : [];
    const reply = { text: body.text, isError: body.isError === true };
    if (media.length > 0) {
      reply.mediaUrl = media[0];
      reply.mediaUrls = media;
    }
    return reply;
  }
}

export default {
  id: ID,
  name: "ClawRouter (BlockRun)",
  description: "ClawRouter's chat commands, answered by the local clawrouter proxy",
  register(api) {
    const proxy = new Proxy(api.pluginConfig ?? {}, api.logger);
    for (const [name, description] of COMMANDS) {
      for (const alias of [name, `cr-${name}`]) {
        api.registerCommand({
          name: alias,
          description,
          acceptsArgs: true,
          requireAuth: true,
          handler: (ctx) => proxy.command(name, ctx),
        });
      }
    }
    if (api.registrationMode === undefined || api.registrationMode === "full") {
      api.registerService({
        id: "blockrun-proxy",
        start: async () => {
          try {
            await proxy.ensure();
          } catch (error) {
            api.logger?.warn?.(`[${ID}] ${error.message}`);
          }
        },
        stop: () => proxy.stop(),
      });
    }
  },
};
