// The mock portal's page script: CPS login and "Lire carte Vitale" through the cardkit
// bridge client, which this portal hosts itself (import map with its integrity hash).
import { CardkitBridge, authenticate as webEidAuthenticate } from "cardkit-bridge";

const body = document.body;
const csrf = body.dataset.csrf;
const bridge = new CardkitBridge({ port: Number(body.dataset.bridgePort) });

// What each failure means for the person at the desk, and what to do: the portal's message
// catalogue (cardkit.portal.messages), embedded in the page, so the page and the server
// never word a failure twice.
const MESSAGES = JSON.parse(document.getElementById("messages").textContent);

function explain(error, context = "cps") {
  if (error.said) return error.said;
  if (error.code === "pin_wrong" && error.triesLeft != null) {
    return MESSAGES.pin_wrong_tries.replace("{tries_left}", error.triesLeft);
  }
  if (context === "vitale" && ["card_absent", "card_unknown"].includes(error.code)) {
    return MESSAGES[error.code.replace("card", "vitale")];
  }
  return MESSAGES[error.code] || error.message || MESSAGES.bridge_failed;
}

async function post(url, data) {
  const answer = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(data || {}),
    credentials: "same-origin",
  });
  const json = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    // The portal's own refusal, already worded by its catalogue.
    throw Object.assign(new Error(json.message), { code: json.code, said: json.message });
  }
  return json;
}

// The reader holding the CPS or CPE that is about to log in (when the session follows the
// card): with several, the page cannot tell which one the agent will use, so none is named
// and the session does not follow.
async function cardReader() {
  try {
    const status = await bridge.status();
    const cards = status.readers.filter((r) => r.card && r.card.family === "cps"); // CPS and CPE
    return cards.length === 1 ? cards[0].name : null;
  } catch {
    return null; // authenticate() says what is wrong with the agent
  }
}

function show(id, text) {
  const element = document.getElementById(id);
  element.textContent = text;
  element.classList.remove("hidden");
}

// The challenge the identification page came with signs the first attempt, while it has at
// least half of its 5 minutes left (counted from the page load, not by the PC's clock, which
// may be wrong); any other attempt asks the portal for a fresh one.
const CHALLENGE_REUSE_MS = 150_000;

const loginButton = document.getElementById("cps-login");
let pageNonce = loginButton ? loginButton.dataset.nonce : undefined;

async function challenge() {
  const nonce = pageNonce;
  pageNonce = undefined;
  if (nonce && performance.now() < CHALLENGE_REUSE_MS) return nonce;
  return (await post("/cps/challenge")).nonce;
}

if (loginButton) {
  loginButton.addEventListener("click", async () => {
    loginButton.disabled = true;
    try {
      const nonce = await challenge();
      const reader = body.dataset.followCard ? await cardReader() : null;
      // A portal on Web eID calls web-eid.js's authenticate(challengeNonce, options): the
      // client has a function of that shape, which this portal uses when so configured.
      const token =
        body.dataset.tokenFormat === "web-eid:1.0"
          ? await webEidAuthenticate(nonce, { port: Number(body.dataset.bridgePort) })
          : await bridge.authenticate(nonce);
      // As a string: the server hands it to the validator as is, with no second encoding.
      const next = await post("/cps/connexion", { token: JSON.stringify(token), nonce, reader });
      window.location.assign(next.redirect);
    } catch (error) {
      show("cps-error", explain(error));
    } finally {
      loginButton.disabled = false;
    }
  });
}

const readButton = document.getElementById("read-vitale");
if (readButton) {
  readButton.addEventListener("click", async () => {
    try {
      const card = await bridge.readVitale();
      const list = document.querySelector("#beneficiaries ul");
      list.replaceChildren();
      for (const person of card.beneficiaries) {
        const item = document.createElement("li");
        const choose = document.createElement("button");
        choose.type = "button";
        choose.className = "beneficiary";
        choose.textContent =
          `${person.first_name} ${person.surname}` + (person.insured ? " (assuré)" : "");
        choose.addEventListener("click", () => {
          document.getElementById("nir").value = person.nir;
          document.getElementById("nom").value = person.surname;
          document.getElementById("prenom").value = person.first_name;
          document.getElementById("nir-form").submit();
        });
        item.append(choose);
        list.append(item);
      }
      document.getElementById("beneficiaries").classList.remove("hidden");
    } catch (error) {
      show("vitale-error", explain(error, "vitale"));
    }
  });
}

const agentStatus = document.getElementById("agent-status");
if (agentStatus) {
  bridge.status().then(
    (status) => {
      agentStatus.textContent = `Logiciel de lecture des cartes : version ${status.version}, en marche.`;
      const list = document.getElementById("readers");
      for (const reader of status.readers) {
        const item = document.createElement("li");
        item.textContent = `${reader.name} : ${reader.card ? reader.card.name : "pas de carte"}`;
        list.append(item);
      }
    },
    (error) => { agentStatus.textContent = explain(error); },
  );
}

// Session follows the card: the session ends when the CPS that opened it leaves its reader,
// seen as it happens (the bridge's card events) or at the next page (the reader's state).
const followed = body.dataset.followReader;
if (followed) {
  const end = () => {
    const form = document.getElementById("logout-form");
    form.elements.raison.value = "carte";
    form.submit();
  };
  bridge.status().then(
    (status) => {
      const reader = status.readers.find((r) => r.name === followed);
      if (!reader || !reader.card_present) end();
    },
    () => {}, // an agent that stopped says nothing about the card
  );
  bridge.onCardEvent((event) => {
    if (event.reader === followed && ["card_removed", "reader_removed"].includes(event.kind)) end();
  });
}

// PSC's "authentification déportée": the portal's server asks the provider at each call
// whether the professional approved on the e-CPS app; the page waits the provider's interval.
const cibaWait = document.getElementById("ciba-wait");
if (cibaWait) {
  const every = 1000 * Number(cibaWait.dataset.interval || 2);
  const check = async () => {
    try {
      const answer = await post("/psc/deporte/etat");
      if (answer.status === "approved") return window.location.assign(answer.redirect);
      if (answer.status === "refused") return show("ciba-error", answer.message);
      setTimeout(check, every);
    } catch (error) {
      show("ciba-error", explain(error));
    }
  };
  setTimeout(check, every);
}
