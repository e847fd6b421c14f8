"""FUSE adapter (the only package that imports pyfuse3)."""
