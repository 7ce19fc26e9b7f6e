"""Development tooling, never imported by production code.

The embedded stack (`python -m webapp dev`), the development mailbox, the demo cash-out and the upkeep of the
translation catalogues.
"""
