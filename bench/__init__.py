"""The channels-binding benchmark: ``make bench`` (see docs/benchmarks.rst)."""
