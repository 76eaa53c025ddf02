-- Service delivered and not (or no longer) invoiced, of one tenant as of a date.
-- Parameters: :tenant (uuid text), :as_of (date).
-- Two kinds of rows, told apart by lifecycle_state:
-- * unbilled due work: a period in generated, edited or locked (a live state that is not
--   billed, skipped, superseded or archived) whose invoice window [start, end) has closed
--   (end <= as_of) and that nothing links to an invoice, an invoice charge or a charge detail;
-- * billed on a voided invoice (lifecycle_state 'billed'): a period still billed and linked to
--   an invoice that was voided afterwards. Voiding only sets the invoice to 'cancelled'
--   (voidInvoiceActions.ts); unlike deleting it (invoiceModification.ts,
--   releaseRecurringServicePeriodInvoiceLinkageForInvoice), it leaves the periods billed and
--   linked, so the service they stand for is invoiced nowhere.
-- Amount: the line's BASE FEE for the period, in the currency of the line's contract: the
-- fixed recurring fee Alga charges per billing period (contract_lines.custom_rate, minor
-- units; the line's billing_frequency is the period the service periods follow), replaced by
-- the contract's pricing schedule in force during the period when one is (billingEngine.ts:
-- the schedule with the latest effective_date that starts before the period ends and does
-- not end before it starts). It is never the whole charge: hourly, usage, product and
-- license charges, proration, discounts and tax are computed by Alga's billing engine when it
-- invoices. Periods of another charge family than 'fixed', or whose line and schedule give no
-- rate, have no amount (NULL), never a guess.
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
    CASE WHEN rate.cents IS NOT NULL THEN upper(k.currency_code) END AS currency,
    CASE WHEN k.currency_code IS NOT NULL THEN rate.cents END AS amount_cents
FROM recurring_service_periods AS p
LEFT JOIN invoices AS i
    ON i.tenant = p.tenant AND i.invoice_id = p.invoice_id
LEFT JOIN contract_lines AS l
    ON l.tenant = p.tenant AND l.contract_line_id = p.obligation_id
LEFT JOIN contracts AS k
    ON k.tenant = l.tenant AND k.contract_id = l.contract_id
LEFT JOIN LATERAL (
    SELECT s.custom_rate
    FROM contract_pricing_schedules AS s
    WHERE s.tenant = l.tenant AND s.contract_id = l.contract_id
      AND s.effective_date < p.service_period_end
      AND (s.end_date IS NULL OR s.end_date > p.service_period_start)
    ORDER BY s.effective_date DESC
    LIMIT 1
) AS scheduled ON true
CROSS JOIN LATERAL (
    SELECT CASE WHEN p.charge_family = 'fixed'
                THEN round(COALESCE(scheduled.custom_rate, l.custom_rate))::bigint END AS cents
) AS rate
WHERE p.tenant = CAST(:tenant AS uuid)
  AND p.invoice_window_end <= CAST(:as_of AS date)
  AND (
      (p.lifecycle_state IN ('generated', 'edited', 'locked')
       AND p.invoice_id IS NULL
       AND p.invoice_charge_id IS NULL
       AND p.invoice_charge_detail_id IS NULL)
      OR (p.lifecycle_state = 'billed' AND i.status = 'cancelled')
  )
ORDER BY p.schedule_key, p.service_period_start, p.record_id
