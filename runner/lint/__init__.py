"""Linters made for this package, run by `make lint`: plpgsql_check over the plpgsql function bodies
(plpgsql.py) and squawk over the versioned migrations (squawk.py)."""
