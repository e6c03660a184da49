"""Throwaway PostgreSQL for proofs, bench and lint (tools of a checkout, not in the wheel): the
embedded cluster, scratch databases on it, and server binaries of other majors."""
