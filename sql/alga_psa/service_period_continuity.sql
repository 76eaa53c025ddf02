-- Gaps and overlaps between consecutive live service periods of each schedule of one tenant.
-- Parameters: :tenant (uuid text).
-- Reads live_service_periods (live_service_periods.sql, put in front as a CTE), ordered by
-- start, then end. Periods are half-open [start, end), so a period ending on the day the next
-- one starts is continuous. A row is compared with everything before it (the latest end so
-- far, not only the previous row's), so a long period that swallows shorter ones is still an
-- overlap.
-- * gap: the schedule covers nothing from covered_until to the row's start;
-- * overlap: the row starts before covered_until.
-- days is the length of the gap or of the overlapping stretch in days.
SELECT
    schedule_key,
    CASE WHEN covered_until < service_period_start THEN 'gap' ELSE 'overlap' END AS issue,
    previous_record_id::text AS previous_record_id,
    previous_period_key,
    covered_until,
    record_id::text AS record_id,
    period_key,
    service_period_start,
    abs(service_period_start - covered_until) AS days
FROM (
    SELECT
        schedule_key,
        record_id,
        period_key,
        service_period_start,
        lag(record_id) OVER w AS previous_record_id,
        lag(period_key) OVER w AS previous_period_key,
        max(service_period_end) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
            AS covered_until
    FROM live_service_periods
    WINDOW w AS (
        PARTITION BY schedule_key
        ORDER BY service_period_start, service_period_end, record_id
    )
) AS ordered
WHERE covered_until IS NOT NULL
  AND covered_until <> service_period_start
ORDER BY schedule_key, service_period_start, record_id
