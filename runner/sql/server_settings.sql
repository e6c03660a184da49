-- The server and the settings that matter to the proofs, for the evidence bundle's run.json.
SELECT
    version() AS server_banner,
    current_setting('synchronous_commit') AS synchronous_commit,
    current_setting('fsync') AS fsync,
    current_setting('default_transaction_isolation') AS default_transaction_isolation,
    current_setting('TimeZone') AS time_zone,
    current_setting('data_checksums') AS data_checksums,
    current_setting('server_version_num') AS server_version_num,
    current_user AS login_role;
