-- Alga PSA invoices as ledger invoices and credit notes (DESIGN.md section 3), one tenant.
-- Parameters: :tenant (uuid text), :timezone (IANA name, AR_TIMEZONE), :only_clients (uuid
-- text array, or NULL for all clients).
-- * draft, cancelled and void invoices are left out: they are not receivables;
-- * prepayment invoices (invoice_type or status 'prepayment') are left out too: a paid prepayment is the client's credit, which the
--   payments query brings in as cash on account;
-- * a credit note (invoice_type 'credit_note', or any invoice with a negative total, as Alga
--   made them before it had credit notes) is kind 'credit_note' with its amount made
--   positive; it names no invoice, so it is the client's unapplied credit;
-- * invoice_date and due_date are timestamptz: their calendar date in the business time zone
--   is the issue and due date; a missing due date means due on issue;
-- * Alga has no dispute flag: nothing is disputed.
SELECT
    i.invoice_id::text AS invoice_id,
    i.client_id::text AS customer_id,
    COALESCE(i.invoice_number, i.invoice_id::text) AS invoice_number,
    CASE WHEN i.invoice_type = 'credit_note' OR i.total_amount < 0 THEN 'credit_note'
         ELSE 'invoice' END AS kind,
    'issued' AS status,
    (i.invoice_date AT TIME ZONE :timezone)::date AS issue_date,
    (COALESCE(i.due_date, i.invoice_date) AT TIME ZONE :timezone)::date AS due_date,
    upper(i.currency_code) AS currency,
    abs(i.total_amount)::bigint AS amount_cents,
    false AS disputed,
    CAST(NULL AS text) AS applies_to_invoice_id
FROM invoices AS i
WHERE i.tenant = CAST(:tenant AS uuid)
  AND (CAST(:only_clients AS uuid[]) IS NULL OR i.client_id = ANY(CAST(:only_clients AS uuid[])))
  AND i.status NOT IN ('draft', 'cancelled', 'void', 'prepayment')
  AND COALESCE(i.invoice_type, 'standard') <> 'prepayment'
  AND i.total_amount <> 0
ORDER BY i.invoice_id
