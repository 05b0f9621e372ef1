"""The demo data (``--seed demo``): accounts matching the mock card profiles, and the
insurer's file on professionals the account-creation doors are checked against.

- cps-doctor (CLAIRE LEFEBVRE, N° AM 731016879) and cps-nurse (THOMAS ROUX, 931234567):
  accounts, CPS or password;
- a health centre (FINESS 750000010): password only, no card;
- cpe-transport (AMBULANCES DU TEST, 920000044): CPE transporteur account;
- cps-midwife (SOPHIE MARTIN, 751234567): no account yet; creates one with her card, or
  with her clé de sécurité (NIR and IBAN below);
- PAUL GIRARD (753456789): no card, no account; a temporary password by post;
- PHARMACIE DU MARCHÉ (752345678): the clé de sécurité is refused to a pharmacy.
"""

from __future__ import annotations

from cardkit.portal import Doors, Dossier

DEMO_PASSWORD = "Demo-2026!"  # noqa: S105 - the demo accounts' published password

#: (kind, name, e-mail, N° AM, FINESS, card account key, card profile)
ACCOUNTS = (
    ("ps", "CLAIRE LEFEBVRE", "claire.lefebvre@cabinet.example", "731016879", None,
     "RPPS:99700075122", "cps-doctor"),
    ("ps", "THOMAS ROUX", "thomas.roux@soins.example", "931234567", None,
     "ADELI:759012345", "cps-nurse"),
    ("director", "CENTRE DE SANTÉ DES TESTS", "direction@centre.example", None, "750000010",
     None, "(FINESS + mot de passe)"),
    ("transport", "AMBULANCES DU TEST", "contact@ambulances.example", None, "920000044",
     "CPE:3920000044/000000007", "cpe-transport"),
)  # fmt: skip

#: The clé de sécurité of the demo (SOPHIE MARTIN): NIR and the last 4 IBAN characters.
DEMO_SECURITY_KEY = ("2 85 03 75 112 045 53", "0147")

DOSSIERS = (
    Dossier("731016879", "CLAIRE LEFEBVRE", "medecin", "274017512345613", "7731",
            "3 place de la Mairie, 75004 Paris"),
    Dossier("931234567", "THOMAS ROUX", "infirmier", "178093112004337", "2208",
            "8 avenue Foch, 93100 Montreuil"),
    Dossier("751234567", "SOPHIE MARTIN", "sage-femme", "285037511204553", "0147",
            "12 rue des Lilas, 75011 Paris"),
    Dossier("753456789", "PAUL GIRARD", "masseur-kinesitherapeute", None, None,
            "5 rue Pasteur, 69003 Lyon"),
    Dossier("752345678", "PHARMACIE DU MARCHÉ", "pharmacie", None, "5512",
            "1 place du Marché, 33000 Bordeaux"),
    Dossier("920000044", "AMBULANCES DU TEST", "transporteur", None, None,
            "40 route de Paris, 92000 Nanterre"),
    Dossier("750000010", "CENTRE DE SANTÉ DES TESTS", "centre", None, None,
            "20 rue de la Santé, 75013 Paris"),
)  # fmt: skip


def seed_demo(doors: Doors) -> list[dict[str, str]]:
    """Create what is missing of the demo data; the accounts created (identifiers and the
    demo password, shown by ``cardkit portal accounts``, demo only)."""
    out = []
    stores = doors.stores
    hashed = doors.hasher.hash(DEMO_PASSWORD)
    with stores.db.transaction():
        for dossier in DOSSIERS:
            stores.insurer.add(dossier)
        for kind, name, email, am, finess, key, card in ACCOUNTS:
            if stores.accounts.by_identifier(am or finess or ""):
                continue
            stores.accounts.create(
                kind=kind,
                display_name=name,
                email=email,
                email_verified=True,
                am_number=am,
                finess=finess,
                card_key=key,
                password_hash=hashed,
            )
            out.append(
                {
                    "name": name,
                    "email": email,
                    "am_number": am or "",
                    "finess": finess or "",
                    "card": card,
                    "password": DEMO_PASSWORD,
                }
            )
    return out
