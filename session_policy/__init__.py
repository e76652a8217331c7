"""Session rules and their enforcement (limits, policy node, index, cleanup, fallback).

Filled in by the sessions work; the package exists so the layout is stable.
"""
