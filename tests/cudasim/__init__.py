"""Numba-CUDA kernels under the CUDA simulator.

A package, so that its conftest.py does not shadow tests/conftest.py (``from conftest import ...``).
"""
