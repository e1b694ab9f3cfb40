"""Benchmarks (docs/performance.md): scripts printing ratios measured in one run."""
