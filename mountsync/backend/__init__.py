"""Object-store backends: the protocol (base), S3 (boto3), an in-memory fake, a fault injector."""
