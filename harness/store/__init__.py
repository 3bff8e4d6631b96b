"""Bytes on disk: the content-addressed artifact store, its keys, digests and locks, and the assets (weights, data) plugins need."""
