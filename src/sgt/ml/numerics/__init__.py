"""Numerics the model families and types share: kernels, standardisers, fitting rules, stacking.

Pure functions and small values; imports numpy and torch, never the rest of `sgt.ml`.
"""
