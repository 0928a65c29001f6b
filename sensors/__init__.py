"""Sensors: they read a bounded batch after a cursor and emit run requests, nothing more."""
