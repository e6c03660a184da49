"""Schema management: the migration ledger and its order, lock waits, the online conversion of the
ledger, retention of its partitions, the package's locks, and where the SQL package is."""
