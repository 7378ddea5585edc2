"""Command line: click group `sgt`."""
