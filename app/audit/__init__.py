"""The audit trail: who did what, when, from where, for which case, and what was answered."""
