"""Helpers shared by the tests and the benchmarks: databases, factories, real server processes, browsers."""
