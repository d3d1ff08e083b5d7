"""Flet controls that render a flow and forward the courier's taps; no rules live here."""
