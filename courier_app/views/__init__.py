"""Flet controls that render a flow and forward the courier's taps; no rules live here.
Screens register in the route table (navigation.py) and open each other by route through
the Navigator they are given (the Shell, shell.py); no screen module imports another."""
