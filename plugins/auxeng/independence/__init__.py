"""Host-team independence: the program's own success measure, one score 0-100 per engagement.

:mod:`auxeng.independence.score` holds the pure formula (documented in ``docs/independence.md``).
"""
