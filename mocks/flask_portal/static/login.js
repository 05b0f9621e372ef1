// The Flask portal's CPS door: the challenge the page came with, signed by the card through
// the bridge, posted back; failures worded by the portal's catalogue.
import { CardkitBridge } from "cardkit-bridge";

const { csrf, bridgePort } = document.body.dataset;
const MESSAGES = JSON.parse(document.getElementById("messages").textContent);
const button = document.getElementById("cps-login");

async function post(url, body) {
  const answer = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  });
  const json = await answer.json();
  if (!answer.ok) throw Object.assign(new Error(json.message), { said: json.message });
  return json;
}

if (button) {
  let nonce = button.dataset.nonce; // a second attempt asks for a fresh challenge
  button.addEventListener("click", async () => {
    try {
      nonce = nonce || (await post("/cps/challenge", {})).nonce;
      const token = await new CardkitBridge({ port: Number(bridgePort) }).authenticate(nonce);
      const next = await post("/cps/login", { token: JSON.stringify(token), nonce });
      window.location.assign(next.redirect);
    } catch (error) {
      nonce = undefined;
      document.getElementById("cps-error").textContent =
        error.said || MESSAGES[error.code] || MESSAGES.bridge_failed;
    }
  });
}
