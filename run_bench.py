#!/usr/bin/env python
"""`python run_bench.py …` is the same as the `videditbench` console script."""

from bench.cli import main

if __name__ == "__main__":
    main()
