"""`python -m companion`: see companion.cli."""

from companion.cli import main

if __name__ == "__main__":
    main()
