"""Offline multi-agent data: the dataset schema, collection, replay and other tools' formats."""
