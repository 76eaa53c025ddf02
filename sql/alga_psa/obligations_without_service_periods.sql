-- Active recurring obligations of one tenant that have no live service periods at all: the
-- cutover runbook's backfill case (Alga's ee/docs/plans/2026-03-18-service-driven-invoicing-
-- cutover/RUNBOOK.md, "Inspect the recurring obligations that should have generated rows").
-- Parameters: :tenant (uuid text), :as_of (date), :horizon_days, :replenish_days.
-- An obligation is a line of an active client contract (is_active, started on or before the
-- date, not ended before it), taken from the contract's template contract when it has one,
-- else from the contract itself, as the runbook joins them. The runbook also filters on
-- contract_lines.is_recurring, a column Alga's migrations never create: every contract line
-- recurs at its billing_frequency, so every active line counts. "No live service periods":
-- no row for the line other than superseded or archived ones. The rows have the shape of
-- service_period_coverage.sql, with nothing generated; schedule_key is the key Alga would give
-- the schedule (recurringServicePeriodKeys.ts: schedule:<tenant>:contract_line:<line>:
-- <cadence owner>:<billing timing>).
SELECT DISTINCT
    'schedule:' || l.tenant::text || ':contract_line:' || l.contract_line_id::text || ':'
        || l.cadence_owner || ':' || l.billing_timing AS schedule_key,
    0 AS live_periods,
    0 AS future_periods,
    CAST(NULL AS date) AS furthest_end,
    CAST(:as_of AS date) + CAST(:horizon_days AS integer) AS target_horizon_end,
    CAST(:as_of AS date) + CAST(:replenish_days AS integer) AS replenish_before,
    false AS meets_target_horizon,
    true AS needs_replenishment
FROM client_contracts AS cc
JOIN contracts AS k
    ON k.tenant = cc.tenant AND k.contract_id = COALESCE(cc.template_contract_id, cc.contract_id)
JOIN contract_lines AS l
    ON l.tenant = k.tenant AND l.contract_id = k.contract_id
WHERE cc.tenant = CAST(:tenant AS uuid)
  AND cc.is_active = true
  AND cc.start_date <= CAST(:as_of AS date)
  AND (cc.end_date IS NULL OR cc.end_date >= CAST(:as_of AS date))
  AND COALESCE(l.is_active, true)
  AND NOT EXISTS (
      SELECT 1
      FROM recurring_service_periods AS p
      WHERE p.tenant = l.tenant
        AND p.obligation_id = l.contract_line_id
        AND p.lifecycle_state NOT IN ('superseded', 'archived')
  )
ORDER BY 1
