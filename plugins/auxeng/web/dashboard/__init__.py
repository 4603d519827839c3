"""The AuxEng dashboard in the Airflow UI."""
