"""Green-loan evidence: bank consents (consent.py), the park's signing keys (keys.py), signed evidence packs
(pack.py) verifiable offline (verify.py), the command line (cli.py), the bank API (api.py).  docs/evidence.md."""
