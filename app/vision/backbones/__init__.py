"""Face-embedding networks behind one small protocol, chosen by name."""
