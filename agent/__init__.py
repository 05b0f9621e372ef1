"""The workstation agent: one per user, it watches the readers and serves the localhost bridge
portals call (consent, PIN prompts, audit log, card work in worker processes)."""
