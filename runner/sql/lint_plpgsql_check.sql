-- plpgsql_check's findings on one function, every warning class on (performance, extra, security,
-- compatibility); a comment in the body cannot switch a check off (use_incomment_options).
SELECT
    c.lineno,
    c.statement,
    c.sqlstate,
    c.message,
    c.detail,
    c.hint,
    c.level,
    c.query
FROM public.plpgsql_check_function_tb(
    %(function_oid)s::oid::regprocedure,
    coalesce(%(relation_oid)s::oid, 0)::regclass,
    fatal_errors => FALSE,
    all_warnings => TRUE,
    use_incomment_options => FALSE
) AS c;
