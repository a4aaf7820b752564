"""``python -m hub.server``: the hub under daphne. The code lives in the daphne seam
(``hub.daphne.server``); this module keeps the command and its names where they were."""

from hub.daphne.server import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
