"""Finding out once per cache dir which conditional requests the server honours.

The probe writes one object of its own under the prefix
(``.mountsync-probe-<random>``) and removes it again:

1. PUT with ``If-None-Match: *`` twice: a 412 on the second means conditional
   writes are honoured (``ServerCaps.conditional_writes``).
2. DELETE with ``If-Match`` of an ETag the object does not have: a 412 (and the
   object still there) means conditional deletes are honoured
   (``ServerCaps.conditional_deletes``). A server that deletes it anyway ignores
   the condition; conditional deletes then become HEAD-then-DELETE.
3. CopyObject to a second probe key with ``CopySourceIfMatch`` of a wrong ETag: a
   412 means source conditions on copies are honoured
   (``ServerCaps.conditional_copies``); otherwise copies HEAD the source first.
4. Plain DELETEs clean up.

Each weaker guarantee is logged once, at WARNING, when it is found.
"""

from __future__ import annotations

import logging
import uuid

from ..backend.base import PreconditionFailedError, StoreError
from ..backend.bucket import Bucket, ServerCaps

log = logging.getLogger("mountsync.reconciler")

_WRONG_ETAG = "0" * 32


async def probe_server(store: Bucket) -> ServerCaps:
    """Probe the server behind ``store`` (see the module docstring) and return what it honours."""
    key = store.key(f".mountsync-probe-{uuid.uuid4().hex}")
    key2 = key + "-copy"
    await store.put(key, b"probe", {}, if_none_match=True)
    writes = deletes = copies = True
    try:
        try:
            await store.put(key, b"probe", {}, if_none_match=True)
            writes = False
        except PreconditionFailedError:
            pass
        try:
            await store.copy(key, key2, None, if_match=_WRONG_ETAG)
            copies = False
        except PreconditionFailedError:
            pass
        try:
            await store.delete(key, if_match=_WRONG_ETAG)
            deletes = not await _gone(store, key)
        except PreconditionFailedError:
            pass
    finally:
        for k in (key, key2):
            try:
                await store.delete(k)
            except StoreError as exc:
                log.info("could not delete probe object %r: %s", k, exc)
    if not writes:
        log.warning("the server ignores conditional writes (If-None-Match); uploads check the "
                    "object with HEAD first, which leaves a short race with other writers")
    if not deletes:
        log.warning("the server ignores conditional deletes (If-Match on DELETE); deletes check the "
                    "object with HEAD first, which leaves a short race with other writers")
    if not copies:
        log.info("the server ignores CopySourceIfMatch; server-side copies check the source with HEAD first")
    return ServerCaps(conditional_writes=writes, conditional_deletes=deletes, conditional_copies=copies)


async def _gone(store: Bucket, key: str) -> bool:
    return await store.head_or_none(key) is None
