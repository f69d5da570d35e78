"""Access tests below HTTP: keys and rate buckets on real databases (a package, so
their module names cannot clash with other test folders)."""
