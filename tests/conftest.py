"""Test-wide settings."""

import os

# The command line keeps compiled programs in the user's cache folder by default; tests
# that call it must neither read nor fill that folder (tests/test_compilation_cache.py
# points it at a temporary one).
os.environ.setdefault("RNNDYN_COMPILATION_CACHE", "0")
