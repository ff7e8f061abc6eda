"""`python -m citebot` runs the `citebot` command."""

from citebot import main

main()
