-- Alga PSA rows of one tenant that the source cannot map onto the ledger: it skips them (the
-- copy goes on) and the check alga_rows_mapped names them. Parameters: :tenant (uuid text).
-- * an invoice that is not finalized (finalized_at empty) but not a draft either: Alga's own
--   AR leaves it out, and so does the copy, but someone set a status on it by hand;
-- * a receivable whose currency is not a three-letter code;
-- * a payment of an invoice that is not finalized;
-- * a credit_tracking row with no client (legacy rows from before the company->client
--   rename), or a credit row whose amounts are not whole minor units, or whose currency is
--   not a three-letter code;
-- * a credit_allocations row whose amount is not in whole minor units.
SELECT 'invoices' AS alga_table, i.invoice_id::text AS row_id, i.invoice_number AS label,
       'not finalized (finalized_at empty) but status ' || i.status AS reason
FROM invoices AS i
WHERE i.tenant = CAST(:tenant AS uuid) AND i.finalized_at IS NULL AND i.status <> 'draft'
UNION ALL
SELECT 'invoices', i.invoice_id::text, i.invoice_number,
       'currency ' || COALESCE(i.currency_code, 'NULL') || ' is not a three-letter code'
FROM invoices AS i
WHERE i.tenant = CAST(:tenant AS uuid) AND i.finalized_at IS NOT NULL
  AND upper(i.currency_code) !~ '^[A-Z]{3}$'
UNION ALL
SELECT 'invoice_payments', p.payment_id::text, i.invoice_number,
       'payment of ' || p.amount || ' on an invoice that is not finalized'
FROM invoice_payments AS p
JOIN invoices AS i ON i.tenant = p.tenant AND i.invoice_id = p.invoice_id
WHERE p.tenant = CAST(:tenant AS uuid) AND i.finalized_at IS NULL AND p.amount <> 0
  AND (p.status IS NULL OR p.status NOT IN ('pending', 'failed'))
UNION ALL
SELECT 'credit_tracking', t.credit_id::text, t.currency_code || ' ' || t.amount,
       CASE WHEN t.client_id IS NULL THEN 'credit with no client'
            WHEN upper(t.currency_code) !~ '^[A-Z]{3}$' THEN 'currency is not a three-letter code'
            ELSE 'amount not in whole minor units' END
FROM credit_tracking AS t
WHERE t.tenant = CAST(:tenant AS uuid)
  AND (t.client_id IS NULL OR t.amount <> trunc(t.amount)
       OR t.remaining_amount <> trunc(t.remaining_amount)
       OR upper(t.currency_code) !~ '^[A-Z]{3}$')
UNION ALL
SELECT 'credit_allocations', a.allocation_id::text, a.amount::text,
       'amount not in whole minor units'
FROM credit_allocations AS a
WHERE a.tenant = CAST(:tenant AS uuid) AND a.amount <> trunc(a.amount)
ORDER BY 1, 3, 2
