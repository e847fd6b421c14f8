"""The filesystem core: inodes, namespace (remote listing ⊕ local overlay), handles.

Knows nothing of FUSE: the adapter in ``mountsync.fuse`` translates kernel
requests into ``FileSystem`` calls and ``FsError`` into errnos.
"""
