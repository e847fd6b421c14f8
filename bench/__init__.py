"""Side-by-side benchmark of mountsync, rclone, s3fs, raw boto3 and a native directory (`make bench`)."""
