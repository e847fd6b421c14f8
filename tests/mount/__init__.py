"""End-to-end tests that really mount a bucket through FUSE (``pytest.mark.fuse``)."""
