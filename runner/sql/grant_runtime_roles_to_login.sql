-- The tests act as each runtime role through SET ROLE, which needs membership (tests/conftest.py).
GRANT outbox_ingest TO current_user;
GRANT outbox_executor TO current_user;
GRANT outbox_repair TO current_user;
GRANT outbox_readonly TO current_user;
GRANT outbox_auditor TO current_user;
