"""Plain data and rules of SGT; imports only `sgt.errors` and the standard library (and numpy)."""
