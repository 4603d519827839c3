"""The AuxEng dashboard in the Airflow UI: its routes (:mod:`.routes`) and what it reads and does
in the store (:mod:`.queries`)."""
