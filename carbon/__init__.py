"""Carbon accounting (碳核算): the factor registry, energy in tce, Scope 1 and 2, intensities, product
footprints, the carbon-quota ledger and restatements.

Calculations are pure functions over pandas frames and an injected `FactorRegistry`; the only module that
reads the time-series store is `carbon.activity`, and the only one that reads or writes the metadata
database is `carbon.records`.  `carbon.pipeline` wires them together for the portal and the benchmarks.
The method, with worked examples, is in docs/methodology.md.
"""
