"""Dependency red flags: the pure rules, flags in the store, help-request signals, manager alerts."""
