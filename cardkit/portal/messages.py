"""Every text a portal shows for an outcome, in one gettext catalogue (French for French
users): the doors' outcomes, each token rejection reason, each NIR error, each code the
bridge answers, the password rules, and the e-mails and letters the doors send.

Codes are stable and English (what code switches on); msgids are English sentences, and
the French lives in ``cardkit/locale/fr/LC_MESSAGES/cardkit.po`` beside the doctor's. A
portal's page script gets the bridge's texts from :func:`bridge_messages` (the mock portal
embeds them in its pages), so the browser and the server never word a failure twice.
"""

from __future__ import annotations

from cardkit.i18n import translator
from cardkit.pcsc_bridge.openapi import BRIDGE_CODES

#: code -> English msgid, with ``{name}`` placeholders.
MESSAGES: dict[str, str] = {
    # --- the password door ---
    "wrong_credentials": "Wrong identifier or password.",
    "account_blocked": "Your account is blocked. Try again in {minutes} min or log in with "
    "your CPS card.",
    "shared_email": "This e-mail address is shared by several accounts: log in with your "
    "health insurance number (N° AM) or your FINESS number.",
    "temporary_expired": "Your temporary password has expired (it was valid for 15 days): "
    "ask for a new one under “Create an account”, or contact technical support.",
    "must_change_password": "You logged in with a temporary password: choose your password "
    "to continue.",
    # --- the card door: the validator's reasons, and the request around them ---
    "bad_request": "Invalid request.",
    "card_login_failed": "The CPS card login failed.",
    "psc_failed": "The Pro Santé Connect login did not succeed: try again.",
    "psc_no_account": "No account goes with this professional: create one by logging in "
    "with your CPS card.",
    "token_size": "The card's answer could not be read: start the CPS card login again "
    "from this page.",
    "token_malformed": "The card's answer could not be read: start the CPS card login "
    "again from this page.",
    "token_format": "The card's answer could not be read: start the CPS card login again "
    "from this page.",
    "algorithm_mismatch": "The card's answer could not be read: start the CPS card login "
    "again from this page.",
    "origin_invalid": "The card's answer could not be read: start the CPS card login again "
    "from this page.",
    "certificate_malformed": "Your card's certificate cannot be read: contact the ANS.",
    "certificate_expired": "Your card's certificate has expired: order a new card from the ANS.",
    "certificate_not_yet_valid": "Your card's certificate is not valid yet: check this "
    "computer's date and time.",
    "certificate_key_usage": "This card cannot be used to log in to this portal.",
    "certificate_policy": "This card cannot be used to log in to this portal.",
    "certificate_untrusted": "Your card is not recognised by this portal.",
    "certificate_revoked": "Your card has been revoked: contact the ANS.",
    "revocation_unavailable": "Your card's status could not be checked. Feel free to try "
    "again, or to log in later.",
    "signature_invalid": "The card's signature does not match this site (it was made for "
    "another one): start the login again from this page.",
    "nonce_unknown": "This login was not started by this page: reload the page and start "
    "the CPS card login again.",
    "nonce_replayed": "This login has already been used: start the CPS card login again.",
    "nonce_expired": "The login request has expired: start the CPS card login again.",
    # --- account creation ---
    "create_by_cps": "CPS card: the account can be created.",
    "create_by_cpe_transport": "CPE transporteur card: the account can be created.",
    "create_refused_cpe": "Only a CPE transporteur card can create an account. Ask your "
    "structure's manager, or create the account another way.",
    "create_refused_card": "This card cannot create an account.",
    "security_key_not_offered": "The security key is not offered to pharmacies, "
    "laboratories, medical transport companies and taxis: create your account with your "
    "card (CPS or CPE transporteur) or ask for a temporary password by post.",
    "security_key_verified": "Security key checked: the account can be created.",
    "security_key_mismatch": "This information does not match what the health insurance "
    "knows: check your health insurance number, your NIR and the last 4 characters of your "
    "IBAN.",
    "security_key_blocked": "Too many tries for this number: try again in {minutes} min, or "
    "create your account with your CPS card.",
    "am_number_format": "The health insurance number (N° AM) has 9 digits.",
    "number_format": "Enter your health insurance number (N° AM) or your FINESS number "
    "(9 characters).",
    "iban_tail_format": "Enter the last 4 characters of your professional account's IBAN.",
    "account_exists_number": "An account already exists for this health insurance number: "
    "log in, or use “Forgotten password”.",
    "account_exists": "This account already exists: log in.",
    "email_invalid": "Enter a valid e-mail address.",
    "passwords_differ": "The two passwords are not the same.",
    "terms_not_accepted": "Accept the terms of use.",
    "letter_requested": "Your request is recorded. If this number is known to the health "
    "insurance, a letter with a temporary password, valid for 15 days, is sent to your "
    "practice's or structure's address. You will have to change it when you first log in.",
    "letter_not_received": "If you have received nothing within 15 days, please contact "
    "technical support.",
    # --- passwords ---
    "password_weak": "The password must contain {missing}.",
    "password_min_length": "at least {count} characters",
    "password_max_length": "at most {count} characters",
    "password_upper": "an upper-case letter",
    "password_lower": "a lower-case letter",
    "password_digit": "a digit",
    "password_special": "a special character (for example ! ? @ # %)",
    # --- account security ---
    "current_password_wrong": "The current password is wrong.",
    "password_changed": "Your password has been changed.",
    "reauthentication_needed": "To change your e-mail address, enter your password, or log "
    "in again with your CPS card.",
    "email_link_sent": "A confirmation link has been sent to {email}. Your e-mail address "
    "changes only once that link is opened.",
    "email_verified": "Your e-mail address is confirmed: {email}.",
    "link_invalid": "This link is no longer valid (already used or expired).",
    "reset_sent_to": "If an account matches, a reset link has been sent to {email}.",
    "reset_sent": "For security reasons the e-mail address is not shown: if an account "
    "matches, a reset link has been sent to that account's e-mail address.",
    "reset_shared_email": "This e-mail address is shared by several accounts: enter your "
    "health insurance number (N° AM) or your FINESS number.",
    "session_ended": "Your session has ended: log in again.",
    # --- what the doors send ---
    "mail_reset_subject": "Resetting your password",
    "mail_reset_body": "To choose a new password, open this link (valid for 1 hour, once): {link}",
    "mail_verify_subject": "Confirm your e-mail address",
    "mail_verify_body": "To confirm that {email} is your address, open this link (valid for "
    "24 hours, once): {link}",
    "mail_email_change_subject": "Change of your account's e-mail address",
    "mail_email_change_body": "A new e-mail address ({email}) was requested for your "
    "account. If you did not ask for it, log in with your CPS card and change your password, "
    "or contact technical support.",
    "letter_subject": "Your temporary password",
    "letter_body": "Identifier: {number}. Temporary password: {password} . It is valid for "
    "15 days (until {until}) and you will be asked to change it when you first log in.",
    # --- NIR (a patient's, or the professional's own in a security key) ---
    "nir_problem": "Invalid NIR: {problem}.",
    "nir_length": "a NIR has 13 characters followed by its key (2 digits)",
    "nir_character": "only digits (and 2A or 2B for Corsica) are expected",
    "nir_sex": "the first digit must be 1 or 2",
    "nir_month": "the birth month is not valid",
    "nir_department": "the birth department is not valid",
    "nir_key": "the key does not match the number (check what you typed)",
    "nir_invalid": "it matches no possible number",
    # --- "Mes derniers évènements" ---
    "event_card_login": "Login with CPS card",
    "event_psc_login": "Login with Pro Santé Connect",
    "event_password_login": "Login with identifier and password",
    "event_password_reset": "Password reset",
    "event_password_changed": "Password changed",
    "event_email_changed": "E-mail address changed",
    "event_account_blocked": "Account blocked",
    "event_unblocked_by_card": "Account unblocked by CPS card",
    "event_unblocked_by_psc": "Account unblocked by Pro Santé Connect",
    "event_account_created": "Account created",
    # --- the bridge, as the page script reports it ---
    "agent_not_running": "The card reading software does not answer: check that it is "
    "installed and running (see “Configure”), then try again.",
    "browser_blocked": "Your browser blocks access to the card reader for this site. Allow "
    "local network access: icon left of the address, “Site settings”.",
    "card_absent": "No CPS card in the reader: insert your card and try again.",
    "vitale_absent": "No Vitale card in the reader: insert it and try again.",
    "card_unknown": "The card inserted is not a CPS or CPE card.",
    "vitale_unknown": "The card inserted is not a Vitale card.",
    "card_error": "The card or the reader did not answer as expected: take the card out, "
    "insert it again and try again.",
    "pin_wrong": "Wrong PIN.",
    "pin_wrong_tries": "Wrong PIN: {tries_left} tries left.",
    "pin_blocked": "Your card is blocked (PIN): unblock it with the PUK code that came with "
    "the card.",
    "pin_cancelled": "PIN entry cancelled.",
    "pin_cooldown": "Wait a few seconds before trying again.",
    "pin_format": "The PIN typed does not have the right format (4 digits): nothing was sent "
    "to the card.",
    "pinpad_unavailable": "This reader has no keypad to type the PIN on.",
    "prompt_unavailable": "The card reading software cannot show the PIN request on this computer.",
    "consent_denied": "You refused to let this site use your cards (see “Configure”).",
    "origin_not_allowed": "This site may not use this computer's card reader (see “Configure”).",
    "busy": "The reader is busy: try again in a moment.",
    "overloaded": "The card reading software is overloaded: try again in a moment.",
    "reader_unavailable": "No card reader is available: plug the reader in.",
    "timeout": "The reader or the PIN entry did not answer in time.",
    "reader_timeout": "The card did not answer: take it out of the reader, insert it again "
    "and try again.",
    "bridge_failed": "The card reading software failed: try again, or run the workstation "
    "check (see “Help”).",
}

#: Each code the bridge or its browser client can answer -> the message shown for it.
#: Completeness against the error registry and the bridge's own codes is tested.
BRIDGE_MESSAGES: dict[str, str] = {
    **{
        code: code
        for code in (
            "agent_not_running",
            "browser_blocked",
            "card_absent",
            "card_unknown",
            "pin_wrong",
            "pin_blocked",
            "pin_cancelled",
            "pin_cooldown",
            "pin_format",
            "pinpad_unavailable",
            "prompt_unavailable",
            "consent_denied",
            "origin_not_allowed",
            "busy",
            "overloaded",
            "reader_unavailable",
            "timeout",
            "reader_timeout",
            "card_error",
        )
    },
    # PUK codes: only the CLI uses the PUK, but their meaning for a page is the PIN's.
    "puk_wrong": "pin_wrong",
    "puk_blocked": "pin_blocked",
    "pin_error": "pin_wrong",
    "pin_required": "pin_cancelled",
    "user_decision": "consent_denied",
    "reader_not_found": "reader_unavailable",
    "reader_ambiguous": "busy",
    "card_reset": "card_error",
    "transport_error": "card_error",
    **{
        code: "card_error"
        for code in (
            "apdu_error",
            "card_memory",
            "conditions_not_satisfied",
            "cps_data",
            "data_not_found",
            "file_not_found",
            "key_not_found",
            "malformed_apdu",
            "malformed_atr",
            "malformed_response",
            "malformed_tlv",
            "mechanism_not_supported",
            "not_supported",
            "record_not_found",
            "security_status_not_satisfied",
            "vitale_data",
            "vitale_error",
            "vitale_nir_invalid",
            "wrong_length",
            "wrong_parameters",
        )
    },
    # What only a broken agent or a page script's mistake can cause, and the bridge's own
    # refusals not worded above (host_not_allowed, too_large, bad_request...).
    **{
        code: "bridge_failed"
        for code in (
            "error",
            "agent_error",
            "pkcs11_error",
            "pkcs11_module_missing",
            "config_invalid",
            "trust_store_missing",
            "nonce_invalid",
            "origin_invalid",
            *sorted(BRIDGE_CODES - {"origin_not_allowed", "overloaded", "timeout"}),
        )
    },
}


def text(code: str, language: str = "fr", **params: object) -> str:
    """The message for ``code`` in ``language`` (French by default: the portals' users),
    its placeholders filled from ``params``."""
    message = translator(language).gettext(MESSAGES[code])
    return message.format(**params) if params else message


def bridge_messages(language: str = "fr") -> dict[str, str]:
    """Each bridge code -> its text, placeholders left for the page (``{tries_left}``):
    what a portal hands its page script, plus the keys the script needs for its own
    context (``pin_wrong_tries``, ``vitale_absent``, ``vitale_unknown``) and its fallback
    (``bridge_failed``)."""
    own = ("pin_wrong_tries", "vitale_absent", "vitale_unknown", "bridge_failed")
    messages = {code: text(target, language) for code, target in BRIDGE_MESSAGES.items()}
    messages.update({code: translator(language).gettext(MESSAGES[code]) for code in own})
    return messages


def nir_code(code: str) -> str:
    """The message code of a :class:`~cardkit.vitale.nir.NirError` code (a code the
    catalogue does not word reads "it matches no possible number")."""
    return code if code.startswith("nir_") and code in MESSAGES else "nir_invalid"


def nir_message(code: str, language: str = "fr") -> str:
    """ "Invalid NIR: <what is wrong>." for a :class:`~cardkit.vitale.nir.NirError` code."""
    return text("nir_problem", language, problem=text(nir_code(code), language))
