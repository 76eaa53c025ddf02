-- Unbilled due work of one tenant as of a date: recurring service periods that should have
-- been invoiced by now and were not.
-- Parameters: :tenant (uuid text), :as_of (date).
-- A period is unbilled due work when it is generated, edited or locked (a live state that is
-- not billed, skipped, superseded or archived), its invoice window [start, end) has closed
-- (end <= as_of) and nothing links it to an invoice, an invoice charge or a charge detail.
-- Its amount is the monthly rate of the contract line it bills (contract_lines.custom_rate,
-- which Alga PSA keeps in minor units) in the currency of that line's contract; when the line
-- has no rate or the contract no currency, the amount is unknown (NULL), never guessed.
SELECT
    p.record_id::text AS record_id,
    p.schedule_key,
    p.period_key,
    p.lifecycle_state,
    p.service_period_start,
    p.service_period_end,
    p.invoice_window_end,
    CAST(:as_of AS date) - p.invoice_window_end AS days_since_window_closed,
    p.obligation_id::text AS obligation_id,
    CASE WHEN l.custom_rate IS NOT NULL THEN upper(k.currency_code) END AS currency,
    CASE WHEN k.currency_code IS NOT NULL THEN round(l.custom_rate)::bigint END AS amount_cents
FROM recurring_service_periods AS p
LEFT JOIN contract_lines AS l
    ON l.tenant = p.tenant AND l.contract_line_id = p.obligation_id
LEFT JOIN contracts AS k
    ON k.tenant = l.tenant AND k.contract_id = l.contract_id
WHERE p.tenant = CAST(:tenant AS uuid)
  AND p.lifecycle_state IN ('generated', 'edited', 'locked')
  AND p.invoice_window_end <= CAST(:as_of AS date)
  AND p.invoice_id IS NULL
  AND p.invoice_charge_id IS NULL
  AND p.invoice_charge_detail_id IS NULL
ORDER BY p.schedule_key, p.service_period_start, p.record_id
