"""Schema management: migrations, lock waits, the ledger's conversion, retention, the package's locks."""
