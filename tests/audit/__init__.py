"""Audit trail tests below HTTP: the chain, its check and its trimming on real databases
(a package, so their module names cannot clash with other test folders)."""
