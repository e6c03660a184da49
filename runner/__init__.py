"""payment-outbox runner: applies, proves and repairs the payment_outbox SQL package."""
