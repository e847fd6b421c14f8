"""The filesystem core: inodes, namespace (remote listing ⊕ local overlay), handles.

Small objects (``Tree``, ``Listings``, ``Files``, ``Names``, ``Renames``) behind
the ``FileSystem`` facade (core.filesystem; docs/ARCHITECTURE.md, "The core").
Knows nothing of FUSE: the adapter in ``mountsync.fuse`` translates kernel
requests into ``FileSystem`` calls and ``FsError`` into errnos.
"""
