-- plpgsql_check in the lint's scratch database; an untrusted extension, so a superuser creates it.
CREATE EXTENSION IF NOT EXISTS plpgsql_check SCHEMA public;
