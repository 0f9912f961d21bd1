"""Converters: raw protocol payloads (register words, JSON) to values and readings.

Pure functions, kept apart from the code that talks the protocol (collectors/sources/), so each can be tested
with fixtures of raw words or payloads and the exact readings they must give.
"""
