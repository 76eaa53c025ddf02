-- Alga PSA settlements as ledger payments (DESIGN.md section 3), one tenant.
-- Parameters: :tenant (uuid text), :timezone (IANA name, AR_TIMEZONE), :only_clients (uuid
-- text array, or NULL for all clients).
--
-- 1. Recorded payments (invoice_payments) in status 'completed', or with no status (Alga's
--    default is 'completed'); pending, failed and refunded ones are not money received.
--    The payment's client and currency are those of the invoice it names. A payment of an
--    invoice the ledger leaves out (a prepayment, a cancelled invoice) names no receivable,
--    so the aging makes it the client's cash on account.
-- 2. Credit applied (invoices.credit_applied) is a settlement of that invoice on its invoice
--    date (Alga keeps no date on the invoice row; credit is applied when the invoice is
--    finalized). Alga draws that credit from the client's credit balance, which credit notes
--    and paid prepayments filled; so the same amount also leaves the client's credit on
--    account ("credit drawn", a negative row with no invoice). Otherwise a credit note would
--    count twice: once as unapplied credit and once against the invoice.
-- Ids of the derived rows are prefixed so they never collide with Alga's payment ids.
SELECT
    p.payment_id::text AS payment_id,
    i.client_id::text AS customer_id,
    p.invoice_id::text AS invoice_id,
    (p.payment_date AT TIME ZONE :timezone)::date AS received_date,
    upper(i.currency_code) AS currency,
    p.amount::bigint AS amount_cents
FROM invoice_payments AS p
JOIN invoices AS i
    ON i.tenant = p.tenant AND i.invoice_id = p.invoice_id
WHERE p.tenant = CAST(:tenant AS uuid)
  AND (CAST(:only_clients AS uuid[]) IS NULL OR i.client_id = ANY(CAST(:only_clients AS uuid[])))
  AND COALESCE(p.status, 'completed') = 'completed'
  AND p.amount <> 0
UNION ALL
SELECT
    'credit-applied:' || i.invoice_id::text,
    i.client_id::text,
    i.invoice_id::text,
    (i.invoice_date AT TIME ZONE :timezone)::date,
    upper(i.currency_code),
    i.credit_applied::bigint
FROM invoices AS i
WHERE i.tenant = CAST(:tenant AS uuid)
  AND (CAST(:only_clients AS uuid[]) IS NULL OR i.client_id = ANY(CAST(:only_clients AS uuid[])))
  AND i.credit_applied > 0
  AND i.status NOT IN ('draft', 'cancelled', 'void')
UNION ALL
SELECT
    'credit-drawn:' || i.invoice_id::text,
    i.client_id::text,
    CAST(NULL AS text),
    (i.invoice_date AT TIME ZONE :timezone)::date,
    upper(i.currency_code),
    -i.credit_applied::bigint
FROM invoices AS i
WHERE i.tenant = CAST(:tenant AS uuid)
  AND (CAST(:only_clients AS uuid[]) IS NULL OR i.client_id = ANY(CAST(:only_clients AS uuid[])))
  AND i.credit_applied > 0
  AND i.status NOT IN ('draft', 'cancelled', 'void')
ORDER BY 1
