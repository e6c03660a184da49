-- Whether the server can load plpgsql_check, and its major version (which names the package to install).
SELECT
    exists(
        SELECT FROM pg_catalog.pg_available_extensions AS e
        WHERE e.name = 'plpgsql_check'
    ) AS available,
    current_setting('server_version_num')::integer / 10000 AS server_major;
