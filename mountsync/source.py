"""Where a mount's objects are: the ``SOURCE`` argument of ``mountsync mount`` (pure).

Forms (README.md, docs/AZURE.md, docs/GCS.md):

- ``BUCKET[/PREFIX/]`` and ``s3://BUCKET[/PREFIX/]``: Amazon S3 or an S3-compatible store
  (``--endpoint-url`` says which);
- ``gs://BUCKET[/PREFIX/]``: Google Cloud Storage through its own API;
- ``az://ACCOUNT/CONTAINER[/PREFIX/]``: an Azure Blob Storage container of a storage account.

The endpoint is never part of the source: an ``http(s)://`` source is refused with a
pointer to ``--endpoint-url``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UserError
from .keys import split_bucket_arg

CLOUDS = {"s3": "s3", "gs": "gcs", "az": "azure"}  # URL scheme → backend
SCHEME_OF = {cloud: scheme for scheme, cloud in CLOUDS.items()}


@dataclass(frozen=True)
class Source:
    cloud: str  # "s3", "gcs" or "azure"
    bucket: str  # the bucket, or for Azure the container
    prefix: str = ""  # normalized: "" or ending in "/"
    account: str = ""  # Azure: the storage account

    def url(self) -> str:
        """The canonical form, as ``status`` shows it."""
        where = f"{self.account}/{self.bucket}" if self.cloud == "azure" else self.bucket
        return f"{SCHEME_OF[self.cloud]}://{where}/{self.prefix}"


def parse_source(text: str) -> Source:
    """The mount's source from its command-line form; ``UserError`` (exit 2) when malformed."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "s3", text
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        raise UserError(f"{text!r} is an endpoint, not a bucket: give BUCKET[/PREFIX/] (or s3://, gs://, az://) "
                        "and the endpoint with --endpoint-url", code=2)
    if scheme not in CLOUDS:
        raise UserError(f"unknown storage URL {scheme}:// in {text!r}: use BUCKET[/PREFIX/], "
                        "s3://BUCKET[/PREFIX/], gs://BUCKET[/PREFIX/] or az://ACCOUNT/CONTAINER[/PREFIX/]", code=2)
    cloud = CLOUDS[scheme]
    account = ""
    if cloud == "azure":
        account, _, rest = rest.partition("/")
        if not account:
            raise UserError(f"{text!r} names no storage account: use az://ACCOUNT/CONTAINER[/PREFIX/]", code=2)
    bucket, prefix = split_bucket_arg(rest)
    if not bucket:
        what = "container" if cloud == "azure" else "bucket"
        raise UserError(f"{text!r} names no {what}", code=2)
    return Source(cloud, bucket, prefix, account)
