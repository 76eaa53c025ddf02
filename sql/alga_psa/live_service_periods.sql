-- The live recurring service periods of one tenant: the rows coverage and continuity judge.
-- Parameters: :tenant (uuid text).
-- Live means neither superseded (a revision replaced by a newer one for the same period) nor
-- archived (kept for history only). Skipped periods are live: they still take their place in
-- the schedule's timeline. The pipeline puts this in front of service_period_coverage.sql and
-- service_period_continuity.sql as the CTE live_service_periods.
SELECT schedule_key, record_id, period_key, service_period_start, service_period_end
FROM recurring_service_periods
WHERE tenant = CAST(:tenant AS uuid)
  AND lifecycle_state NOT IN ('superseded', 'archived')
