"""AuxEng follow-ups: what happens after an AuxEng engagement ends.

Shared logic for the pack's DAGs. Every module is side-effect free on import:
the Airflow plugin manager imports them all.
"""

__version__ = "0.1.0"
