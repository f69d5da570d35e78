"""The domain: enroll, probe, verify and delete, written once for every front door."""
