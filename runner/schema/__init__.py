"""Schema management: the migration ledger and its order, lock waits, the online conversion of the
ledger, retention of its partitions, and where the SQL package is."""
