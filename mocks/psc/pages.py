"""The mock PSC provider's pages, in French: the login page (CPS card through the agent, or
e-CPS), the wait for the e-CPS approval, and a refusal."""

from __future__ import annotations

from html import escape

from flask import Response, make_response


def refused_page(reason: str, status: int) -> Response:
    return make_response(REFUSED_PAGE.format(reason=escape(reason)), status)


LOGIN_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Pro Santé Connect (démonstration)</title>
{import_map}</head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Pro Santé Connect</h1>
<p>Insérez votre carte CPS dans le lecteur, puis connectez-vous.</p>
<form id="card-form" method="post">
  <input type="hidden" name="challenge" value="{nonce}">
  <input type="hidden" name="token" value="">
  <button type="button" id="card-login">Se connecter avec ma carte CPS</button>
</form>
<p id="error" role="alert" hidden></p>
<h2>e-CPS</h2>
<form id="ecps-form" method="post">
  <label>Identifiant national <input name="ecps_hint" autocomplete="username"></label>
  <button id="ecps-login">Se connecter avec e-CPS</button>
</form>
<script type="module" nonce="{script_nonce}">
import {{ CardkitBridge }} from "cardkit-bridge";
const form = document.getElementById("card-form");
document.getElementById("card-login").addEventListener("click", async () => {{
  try {{
    const token = await new CardkitBridge({{ port: {port} }}).authenticate(form.challenge.value);
    form.token.value = JSON.stringify(token);
    form.submit();
  }} catch (error) {{
    const shown = document.getElementById("error");
    shown.textContent = error.message;
    shown.hidden = false;
  }}
}});
</script>
</body></html>
"""

WAITING_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Pro Santé Connect : e-CPS</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Pro Santé Connect</h1>
<p>Validez la demande dans votre application e-CPS. Code de la demande :
<strong id="binding">{binding}</strong></p>
<form id="done" method="post"><input type="hidden" name="ecps_request" value="{request_id}">
</form>
<p id="expired" hidden>La demande a expiré : recommencez.</p>
<script nonce="{nonce}">
const form = document.getElementById("done");
const timer = setInterval(async () => {{
  const answer = await (await fetch("/ecps/attente/{request_id}")).json();
  if (answer.status === "approved" || answer.status === "denied") {{
    clearInterval(timer);
    form.submit();
  }} else if (answer.status === "expired") {{
    clearInterval(timer);
    document.getElementById("expired").hidden = false;
  }}
}}, 500);
</script>
</body></html>
"""

REFUSED_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Pro Santé Connect</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Pro Santé Connect</h1><p id="refused">{reason}</p></body></html>
"""
