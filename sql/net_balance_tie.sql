-- Does the aging tie to the ledger? Per customer and currency, the ledger's balance as of the
-- date (issued invoices less issued credit notes less payments, each counted by its own date)
-- next to ar_aging's net balance (open items less unapplied credit) of the same date. Lists
-- only the pairs that differ: none, unless a row that check ledger_sane names (an amount
-- beyond the bound, a reversal beyond what was paid) is involved, or the day was not aged.
-- Parameter: as_of (a date with ar_aging rows).
SELECT customer_id,
       currency,
       SUM(ledger_cents) AS ledger_balance_cents,
       SUM(aging_cents)  AS net_balance_cents
FROM (
    SELECT customer_id, currency,
           CASE WHEN kind = 'invoice' THEN amount_cents ELSE -amount_cents END AS ledger_cents,
           0 AS aging_cents
    FROM invoices
    WHERE status = 'issued' AND issue_date <= :as_of
    UNION ALL
    SELECT customer_id, currency, -amount_cents, 0
    FROM payments
    WHERE received_date <= :as_of
    UNION ALL
    SELECT customer_id, currency, 0, net_balance_cents
    FROM ar_aging
    WHERE as_of = :as_of
) AS both_sides
GROUP BY customer_id, currency
HAVING SUM(ledger_cents) <> SUM(aging_cents)
ORDER BY customer_id, currency;
