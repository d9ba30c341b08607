"""``python -m lstm_numba.report`` (the same as ``python -m lstm_numba report``)."""
import sys

from .build import main

if __name__ == "__main__":
    sys.exit(main())
