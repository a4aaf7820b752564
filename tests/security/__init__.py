"""Attacker-style tests: one file per point of issue 11 (SECURITY.md states the threat model)."""
