"""The ETag S3 gives an object we upload, computed locally (pure apart from reading a file).

Single PUT: the hex MD5 of the body. Multipart: the hex MD5 of the
concatenated binary MD5s of the parts, then ``-N``. Used to recognise our own
upload after a crash between the server's success and the journal commit
(the retry then sees 412 against a version that is in fact ours).
Not valid with SSE-KMS/SSE-C, where ETags are not MD5s: there the check just
does not match, and the conflict path keeps both versions (safe, never lossy).
"""

from __future__ import annotations

import hashlib


def part_size_for(size: int, part_size: int) -> int:
    """The part size the uploader uses for ``size`` bytes (at most 10,000 parts)."""
    return max(part_size, -(-size // 10000))


def expected_etag(path: str, size: int, multipart_threshold: int, part_size: int) -> str:
    with open(path, "rb") as f:
        if size < multipart_threshold:
            h = hashlib.md5()
            while chunk := f.read(1 << 20):
                h.update(chunk)
            return h.hexdigest()
        ps = part_size_for(size, part_size)
        digests = []
        while True:
            part = f.read(ps)
            if not part:
                break
            digests.append(hashlib.md5(part).digest())
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"
