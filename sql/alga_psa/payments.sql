-- Alga PSA money movements as ledger payments (docs/design.md, The ledger contract), one tenant.
-- Parameters: :tenant (uuid text), :timezone (IANA name, AR_TIMEZONE), :only_clients (uuid
-- text array, or NULL for all clients).
--
-- Alga's balance due of an invoice is total_amount - credit_applied - the sum of ALL its
-- invoice_payments rows (InvoiceService.ts, PaymentService.ts, recordExternalPayment.ts):
-- a refund is a negative row in status 'refunded', a reversal a negative row in status
-- 'reversed'. Dates follow one rule: a value at exactly midnight UTC is a date-only value
-- (Alga writes 'YYYY-MM-DD' on UTC sessions) and is that UTC calendar date; any other value is
-- an instant and is its calendar date in AR_TIMEZONE.
--
-- 1. payment:  every invoice_payments row of a receivable (invoices.sql's rule), refunds and
--    reversals included, except the statuses that are no money movement: 'pending' and
--    'failed' (a NULL status is Alga's default, 'completed'). A row without payment_date is
--    dated by its created_at (when Alga recorded it), else by the invoice date. Payments of
--    a prepayment are not copied: the prepayment's credit was issued in full when it was
--    finalized (invoiceModification.ts) and is in credit_tracking (part 4); payments of
--    drafts are named by unmapped_rows.sql; voided invoices keep no net payment (voiding
--    refuses while payments sum above zero).
-- 2. credit-applied: each credit_allocations row on a receivable settles it on the date it was
--    made (created_at). Where invoices.credit_applied differs from the sum of its allocations
--    (applications from before Alga kept allocations), the difference settles it on its
--    invoice date.
-- 3-6. The client's credit on account, from Alga's credit ledger (creditBalance.ts: available
--    credit is the remaining_amount of credit_tracking rows that are not expired), as rows
--    naming no invoice, in the credit's currency:
--    3. credit:  each credit_tracking row adds its amount on its created_at;
--    4. credit-expired: an expired row (is_expired, or expiration_date passed) loses what
--       remained on it, on its expiration_date: what remains now if Alga's expiry job has not
--       run yet, else what the job took (its credit_expiration transaction, which names the
--       credit's issuing transaction; the job zeroes remaining_amount);
--    5. credit-drawn: each allocation takes its amount out, on its created_at;
--    6. credit-adjusted: whatever else moved the balance (a voided invoice's applications
--       given back, a voided credit note clawed back) is the difference between those rows
--       and Alga's remaining_amount, per client and currency, dated by the last change of the
--       client's credit rows (updated_at).
--    Credit rows without a client, or with amounts not in whole minor units, are left out and
--    named by unmapped_rows.sql.
-- Ids of the derived rows are prefixed so they never collide with Alga's payment ids.
WITH receivable AS (
    SELECT i.invoice_id, i.client_id, i.invoice_date, i.credit_applied,
           upper(i.currency_code) AS currency
    FROM invoices AS i
    WHERE i.tenant = CAST(:tenant AS uuid)
      AND (CAST(:only_clients AS uuid[]) IS NULL
           OR i.client_id = ANY(CAST(:only_clients AS uuid[])))
      AND i.finalized_at IS NOT NULL
      AND i.is_prepayment = false
      AND i.status <> 'cancelled'
      AND i.invoice_type NOT IN ('credit_note', 'prepayment')
      AND i.total_amount > 0
      AND upper(i.currency_code) ~ '^[A-Z]{3}$'
),
allocation AS (
    SELECT a.allocation_id, a.invoice_id, i.client_id, upper(i.currency_code) AS currency,
           a.amount::bigint AS amount, a.created_at
    FROM credit_allocations AS a
    JOIN invoices AS i ON i.tenant = a.tenant AND i.invoice_id = a.invoice_id
    WHERE a.tenant = CAST(:tenant AS uuid)
      AND (CAST(:only_clients AS uuid[]) IS NULL
           OR i.client_id = ANY(CAST(:only_clients AS uuid[])))
      AND a.amount = trunc(a.amount)
),
credit AS (
    SELECT t.credit_id, t.client_id, upper(t.currency_code) AS currency,
           t.amount::bigint AS amount, t.remaining_amount::bigint AS remaining, t.created_at,
           COALESCE(t.updated_at, t.created_at) AS changed_at,
           COALESCE(t.expiration_date, x.expired_on, t.updated_at, t.created_at) AS expired_at,
           (t.is_expired OR t.expiration_date <= CURRENT_TIMESTAMP) AS expired,
           COALESCE(x.expired_amount, 0) AS expired_by_job
    FROM credit_tracking AS t
    -- what Alga's expiry job took off the credit (it zeroes remaining_amount and writes a
    -- credit_expiration transaction of minus what remained, naming the issuing transaction)
    LEFT JOIN (
        SELECT e.related_transaction_id, -sum(e.amount)::bigint AS expired_amount,
               min(e.created_at) AS expired_on
        FROM transactions AS e
        WHERE e.tenant = CAST(:tenant AS uuid) AND e.type = 'credit_expiration'
          AND e.related_transaction_id IS NOT NULL
        GROUP BY e.related_transaction_id
    ) AS x ON x.related_transaction_id = t.transaction_id
    WHERE t.tenant = CAST(:tenant AS uuid)
      AND t.client_id IS NOT NULL
      AND (CAST(:only_clients AS uuid[]) IS NULL
           OR t.client_id = ANY(CAST(:only_clients AS uuid[])))
      AND t.amount = trunc(t.amount) AND t.remaining_amount = trunc(t.remaining_amount)
      AND upper(t.currency_code) ~ '^[A-Z]{3}$'
),
movement AS (
    SELECT
        p.payment_id::text AS payment_id,
        r.client_id,
        r.invoice_id,
        COALESCE(p.payment_date, p.created_at, r.invoice_date) AS at,
        r.currency,
        p.amount,
        p.created_at AS recorded_at
    FROM invoice_payments AS p
    JOIN receivable AS r ON r.invoice_id = p.invoice_id
    WHERE p.tenant = CAST(:tenant AS uuid)
      AND (p.status IS NULL OR p.status NOT IN ('pending', 'failed'))
      AND p.amount <> 0
    UNION ALL
    SELECT 'credit-applied:' || a.allocation_id::text, a.client_id, a.invoice_id, a.created_at,
           a.currency, a.amount, CAST(NULL AS timestamptz)
    FROM allocation AS a
    JOIN receivable AS r ON r.invoice_id = a.invoice_id
    WHERE a.amount <> 0
    UNION ALL
    SELECT 'credit-applied:' || r.invoice_id::text, r.client_id, r.invoice_id, r.invoice_date,
           r.currency, COALESCE(r.credit_applied, 0) - COALESCE(s.allocated, 0),
           CAST(NULL AS timestamptz)
    FROM receivable AS r
    LEFT JOIN (SELECT invoice_id, sum(amount) AS allocated FROM allocation GROUP BY invoice_id)
        AS s ON s.invoice_id = r.invoice_id
    WHERE COALESCE(r.credit_applied, 0) <> COALESCE(s.allocated, 0)
    UNION ALL
    SELECT 'credit:' || c.credit_id::text, c.client_id, NULL, c.created_at, c.currency, c.amount,
           CAST(NULL AS timestamptz)
    FROM credit AS c
    WHERE c.amount <> 0
    UNION ALL
    SELECT 'credit-expired:' || c.credit_id::text, c.client_id, NULL, c.expired_at, c.currency,
           -(c.remaining + c.expired_by_job), CAST(NULL AS timestamptz)
    FROM credit AS c
    WHERE c.expired AND c.remaining + c.expired_by_job <> 0
    UNION ALL
    SELECT 'credit-drawn:' || a.allocation_id::text, a.client_id, NULL, a.created_at,
           a.currency, -a.amount, CAST(NULL AS timestamptz)
    FROM allocation AS a
    WHERE a.amount <> 0
    UNION ALL
    SELECT 'credit-adjusted:' || c.client_id::text || ':' || c.currency, c.client_id, NULL,
           max(c.changed_at), c.currency,
           -(sum(c.amount) - sum(c.remaining) - sum(c.expired_by_job)
             - COALESCE(max(d.drawn), 0)),
           CAST(NULL AS timestamptz)
    FROM credit AS c
    LEFT JOIN (SELECT client_id, currency, sum(amount) AS drawn FROM allocation
               GROUP BY client_id, currency) AS d
        ON d.client_id = c.client_id AND d.currency = c.currency
    GROUP BY c.client_id, c.currency
    HAVING sum(c.amount) - sum(c.remaining) - sum(c.expired_by_job)
           - COALESCE(max(d.drawn), 0) <> 0
)
SELECT
    m.payment_id,
    m.client_id::text AS customer_id,
    m.invoice_id::text AS invoice_id,
    -- never after the day it was recorded: Alga writes a payment recorded by hand in the
    -- evening with the next UTC date, and counts it in the balance due at once
    LEAST(CASE WHEN (m.at AT TIME ZONE 'UTC')::time = time '00:00'
         THEN (m.at AT TIME ZONE 'UTC')::date
         ELSE (m.at AT TIME ZONE :timezone)::date END,
         (m.recorded_at AT TIME ZONE :timezone)::date) AS received_date,
    m.currency,
    CAST(m.amount AS bigint) AS amount_cents
FROM movement AS m
ORDER BY 1
