"""Example jobs; run them with `mapreduce run jobs/NAME.py INPUT --output DIR`."""
