"""The workstation agent: watches readers and serves the localhost bridge (later issues)."""
