"""Lineup: face recognition gallery/probe service."""
