"""The engagement registry: parsing the YAML, syncing it into the store, the engagement lifecycle."""
