-- Alga PSA invoices as ledger invoices (docs/design.md, The ledger contract), one tenant.
-- Parameters: :tenant (uuid text), :timezone (IANA name, AR_TIMEZONE), :only_clients (uuid
-- text array, or NULL for all clients).
-- A receivable is what Alga's own AR ages (billingProfileArActions.ts): a finalized invoice
-- (finalized_at set; a draft has none) that is no prepayment (is_prepayment), and that was not
-- voided (voiding writes status 'cancelled'). Credit notes (invoice_type 'credit_note', or a
-- negative total, as Alga made credits before it had credit notes) and prepayments are no
-- receivables: the credit they give is in Alga's credit ledger (payments.sql).
-- Dates: Alga writes date-only values (invoice and due dates) as midnight UTC, so a value at
-- exactly midnight UTC is the UTC calendar date it was written as; any other value is an
-- instant and becomes its calendar date in the business time zone (AR_TIMEZONE).
-- Rows the mapping cannot take (a non-ISO currency) are left out and named by
-- unmapped_rows.sql. Alga has no dispute flag: nothing is disputed.
SELECT
    i.invoice_id::text AS invoice_id,
    i.client_id::text AS customer_id,
    i.invoice_number,
    'invoice' AS kind,
    'issued' AS status,
    CASE WHEN (i.invoice_date AT TIME ZONE 'UTC')::time = time '00:00'
         THEN (i.invoice_date AT TIME ZONE 'UTC')::date
         ELSE (i.invoice_date AT TIME ZONE :timezone)::date END AS issue_date,
    CASE WHEN (i.due_date AT TIME ZONE 'UTC')::time = time '00:00'
         THEN (i.due_date AT TIME ZONE 'UTC')::date
         ELSE (i.due_date AT TIME ZONE :timezone)::date END AS due_date,
    upper(i.currency_code) AS currency,
    i.total_amount AS amount_cents,
    false AS disputed,
    CAST(NULL AS text) AS applies_to_invoice_id
FROM invoices AS i
WHERE i.tenant = CAST(:tenant AS uuid)
  AND (CAST(:only_clients AS uuid[]) IS NULL OR i.client_id = ANY(CAST(:only_clients AS uuid[])))
  AND i.finalized_at IS NOT NULL
  AND i.is_prepayment = false
  AND i.status <> 'cancelled'
  AND i.invoice_type NOT IN ('credit_note', 'prepayment')
  AND i.total_amount > 0
  AND upper(i.currency_code) ~ '^[A-Z]{3}$'
ORDER BY i.invoice_id
