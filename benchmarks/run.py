"""Benchmark every mode beside its naive baseline; the same as `sdplay bench` (see --help)."""

from sdplay.cli import app

if __name__ == "__main__":
    app(["bench", *__import__("sys").argv[1:]])
