"""`sdplay bench`: every figure beside its naive baseline, measured side by side in one run."""
