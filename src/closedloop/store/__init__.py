"""Persistence: the metadata database and the object store."""
