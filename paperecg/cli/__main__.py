"""`python -m paperecg.cli ...` is the `paperecg` command."""
from paperecg.cli import entry_point

entry_point()
