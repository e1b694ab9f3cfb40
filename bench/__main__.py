"""``python -m bench`` (make bench): the engine benchmark."""
import sys

from .engine_bench import main

sys.exit(main())
