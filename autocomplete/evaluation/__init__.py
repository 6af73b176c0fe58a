"""Measuring the completer: protocols, metrics, replay through a running server (not used by serving)."""
