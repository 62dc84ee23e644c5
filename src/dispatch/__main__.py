"""`python -m dispatch` is the same as the `dispatch` console command."""

from dispatch.cli import main

if __name__ == "__main__":
    main()
