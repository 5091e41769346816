"""Bybit v5: public and private streams, REST, instrument rules, the live broker, a simulator.

The engine uses only `adapters.bybit.factory`; see README.md in this folder for the design.
"""
