-- Records one applied file; a repeatable file's row is replaced.
INSERT INTO payment_outbox.schema_migrations (file_name, kind, sha256)
VALUES (%(file_name)s, %(kind)s, %(sha256)s)
ON CONFLICT ON CONSTRAINT schema_migrations_pkey DO UPDATE
    SET sha256 = excluded.sha256, applied_at = now(), applied_by = current_user;
