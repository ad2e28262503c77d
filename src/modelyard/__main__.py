"""``python -m modelyard``: the same command as the ``modelyard`` console script."""

from modelyard.cli import main

if __name__ == "__main__":
    main()
