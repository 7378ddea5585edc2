"""`python -m sgt` runs the command line."""

from sgt.cli.main import cli

if __name__ == "__main__":
    cli()
