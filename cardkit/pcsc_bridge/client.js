// cardkit bridge client: an ES module for portals, with no dependencies.
//
// Host this file with your own pages (`cardkit bridge client-js --out DIR` writes it as
// cardkit-bridge-<version>.js and prints its integrity hash); never import it from the
// bridge's port, which any local program could hold. Then:
//   <script type="importmap">{"imports": {"cardkit-bridge": "/js/cardkit-bridge-0.1.0.js"},
//     "integrity": {"/js/cardkit-bridge-0.1.0.js": "sha384-..."}}</script>
//   import { CardkitBridge } from "cardkit-bridge";
//
// Everything the bridge answers but the signed token is unauthenticated (any program that
// holds the port could answer instead): trust only what your server validates.
//   const bridge = new CardkitBridge();          // or new CardkitBridge({ port: 38470 })
//   const token = await bridge.authenticate(nonceFromYourServer);
//   const card = await bridge.readVitale();
//
// Failures are CardkitBridgeError with a stable `code`: the bridge's problem codes
// (pin_wrong with `triesLeft`, pin_blocked, card_absent, consent_denied, busy, timeout...),
// plus two the browser side decides:
//   - "agent_not_running": nothing answers on the bridge's port;
//   - "browser_blocked": the browser refused local network access (Chrome 142+ asks the
//     user once per site; once dismissed or denied, calls fail before reaching the agent).
//     `howToAllow` says where to change it.

const DEFAULT_PORT = 38470;

export class CardkitBridgeError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = "CardkitBridgeError";
    this.code = code;
    Object.assign(this, extra);
  }
}

const HOW_TO_ALLOW =
  "Autorisez l'accès au réseau local pour ce site : cliquez sur l'icône à gauche de " +
  "l'adresse, puis « Paramètres du site » > « Accès au réseau local » > Autoriser.";

async function localAccessState() {
  // Chrome's Local Network Access permission; absent elsewhere.
  if (!navigator.permissions || !navigator.permissions.query) return "unknown";
  for (const name of ["local-network-access", "loopback-network"]) {
    try {
      const status = await navigator.permissions.query({ name });
      return status.state; // "granted" | "denied" | "prompt"
    } catch (_) {
      // not a permission this browser knows: try the next name
    }
  }
  return "unknown";
}

export class CardkitBridge {
  constructor({ port = DEFAULT_PORT, host = "127.0.0.1", timeoutMs = 130000 } = {}) {
    this.base = `http://${host}:${port}`;
    this.timeoutMs = timeoutMs;
  }

  async _request(path, { method = "GET", body } = {}) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
        targetAddressSpace: "loopback", // Chrome LNA: say what we reach for
        mode: "cors",
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      if (error && error.name === "AbortError") {
        throw new CardkitBridgeError("timeout", "l'agent n'a pas répondu à temps");
      }
      if ((await localAccessState()) === "denied") {
        throw new CardkitBridgeError("browser_blocked", "le navigateur bloque l'accès local", {
          howToAllow: HOW_TO_ALLOW,
        });
      }
      throw new CardkitBridgeError(
        "agent_not_running",
        "le logiciel de lecture de carte ne répond pas : est-il démarré ?",
      );
    } finally {
      clearTimeout(timer);
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new CardkitBridgeError(data.code || "error", data.detail || response.statusText, {
        status: response.status,
        triesLeft: data.tries_left,
      });
    }
    return data;
  }

  status() {
    return this._request("/v1/status");
  }

  // `format`: "cardkit:1" (the default) or "web-eid:1.0".
  authenticate(nonce, { card, format } = {}) {
    const body = { nonce };
    if (card) body.card = card;
    if (format) body.format = format;
    return this._request("/v1/auth", { method: "POST", body });
  }

  readVitale({ card } = {}) {
    return this._request("/v1/vitale/read", { method: "POST", body: card ? { card } : {} });
  }

  // callback({kind, reader, atr}) on every reader/card change; returns a function that stops.
  onCardEvent(callback) {
    const source = new EventSource(this.base + "/v1/events");
    const kinds = ["reader_added", "reader_removed", "card_inserted", "card_removed"];
    const handler = (message) => callback(JSON.parse(message.data));
    for (const kind of kinds) source.addEventListener(kind, handler);
    return () => source.close();
  }
}

// Web eID's shape: web-eid.js's `authenticate(challengeNonce, options)`, resolving to the
// same web-eid:1.0 token object ({unverifiedCertificate, algorithm, signature, format,
// appVersion}), so a portal on Web eID swaps one import:
//   import { authenticate } from "cardkit-bridge";
//   const authToken = await authenticate(challengeNonce, { timeout: 120000 });
// `timeout` is web-eid.js's (milliseconds); `lang` is accepted and unused (the agent's
// dialogs speak French); `port` and `card` are cardkit's. Failures are CardkitBridgeError.
export function authenticate(challengeNonce, options = {}) {
  const { timeout, port, card } = options;
  const bridge = new CardkitBridge({ port, timeoutMs: timeout });
  return bridge.authenticate(challengeNonce, { card, format: "web-eid:1.0" });
}
