// The backend's door, wired onto the engine: cluster control (requests every node acts
// on), moderation (bans and mutes that admission and the gate check), the publish hook
// and the webhooks. app.ts opens it after the engine and before Bun.serve; the server API
// (transport/api.ts) talks to the moderator it returns.
import type { Config } from "./config.ts";
import { VERSION } from "./config.ts";
import { ClusterControl } from "./engine/control.ts";
import type { ChatEngine } from "./engine/engine.ts";
import { Moderator } from "./engine/moderation.ts";
import type { SanctionStore } from "./engine/sanctions.ts";
import { PublishHook } from "./hooks/publish-hook.ts";
import { Webhooks, type WebhookTiming } from "./hooks/webhooks.ts";

export interface BackendDoor {
  moderator: Moderator;
  webhooks: Webhooks | null;
  /** Timers and control subscriptions off (graceful stop). */
  stop(): void;
}

export async function openBackendDoor(config: Config, engine: ChatEngine, nodeId: string, sanctions: SanctionStore, webhookTiming?: Partial<WebhookTiming>): Promise<BackendDoor> {
  const { broker, metrics, log } = engine;
  const control = new ClusterControl(broker, engine.directory, nodeId, log);
  // Control topics go to the control, everything else to the engine (before any subscribe).
  broker.onDeliver(control.route(engine.deliver));
  const moderator = new Moderator(engine, sanctions, control, log);
  // A rename reaches the person's connections on every node (told, not asked: a node that
  // misses it is one whose Redis link is down, and it loses its people anyway).
  control.handle("renamed", (args) => engine.renamedElsewhere(String(args.person), String(args.key), String(args.name)));
  engine.onRenamed = (person, key, name) => control.tell("renamed", { person, key, name });
  engine.gate.sanctions = moderator.index;
  const userAgent = `bunchat/${VERSION}`;
  if (config.publishHookUrl !== "") {
    engine.gate.hook = new PublishHook({
      url: config.publishHookUrl, timeoutMs: config.publishHookTimeout, failOpen: config.publishHookFailure === "open",
      secret: config.webhookSecret, maxTextLength: config.maxTextLength, userAgent, metrics, log,
    });
  }
  let webhooks: Webhooks | null = null;
  if (config.webhookUrl !== "") {
    const hooks = new Webhooks({
      url: config.webhookUrl, secret: config.webhookSecret, events: config.webhookEvents, queueLimit: config.webhookQueue,
      node: nodeId, userAgent, metrics, log, timing: webhookTiming,
    });
    webhooks = hooks;
    engine.directory.watch(hooks.directoryEvent);
    engine.gate.onStored = (item, _message, person) => hooks.messageStored(item, person);
  }
  await control.start();
  await moderator.start();
  return {
    moderator,
    webhooks,
    stop() {
      moderator.stop();
      control.stop();
    },
  };
}
