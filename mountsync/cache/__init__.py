"""The on-disk cache: data files named by internal ids, and the durable journal."""
