"""Storage tests (a package, so their module names can't clash with other test folders)."""
