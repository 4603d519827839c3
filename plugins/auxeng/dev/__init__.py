"""Demo and benchmark data (nothing in production imports these modules)."""
