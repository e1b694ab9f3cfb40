"""``python -m bench`` (make bench): every benchmark figure in one run (docs/performance.md):
the engine benchmark, real-size throughput float32 / int8 (issue 14), Dask 1 vs 2 workers."""
import sys

from . import batch_bench, engine_bench, throughput_bench

codes = [engine_bench.main([]), throughput_bench.main([]), batch_bench.main(["--single-threaded"])]
sys.exit(max(codes))
