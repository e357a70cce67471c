"""Relay's reliability and security suite (issue 6): see README.md in this directory."""
