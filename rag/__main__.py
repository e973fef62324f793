"""`python -m rag ...`: the same command line as the installed `rag` command."""

import sys

from rag.cli import main

if __name__ == "__main__":
    sys.exit(main())
