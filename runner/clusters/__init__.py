"""Throwaway clusters the runner starts for its proofs: the HA cluster (etcd, Patroni, PgBouncer)."""
