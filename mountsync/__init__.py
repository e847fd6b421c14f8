"""mountsync: mount an S3 bucket as a local folder through an on-disk write-back cache."""

__version__ = "0.1.0"
