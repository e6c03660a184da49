"""Throwaway PostgreSQL for proofs, bench and lint (tools of a checkout, not in the wheel): the
embedded cluster, scratch databases on it, server binaries of other majors, and the HA cluster
(etcd, Patroni, PgBouncer) of the failover proofs."""
