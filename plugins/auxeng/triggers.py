"""Kept for the classpath stored in serialized DAGs and the trigger table."""

from auxeng.dagkit.triggers import FileContentChangedTrigger

__all__ = ["FileContentChangedTrigger"]
