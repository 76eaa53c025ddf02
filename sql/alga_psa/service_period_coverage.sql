-- Coverage of each active recurring schedule of one tenant as of a date.
-- Parameters: :tenant (uuid text), :as_of (date), :horizon_days, :replenish_days.
-- Live rows are those not superseded and not archived (a superseded revision was replaced by
-- a newer one for the same period; an archived row is history only). A schedule is active
-- when it has a live row. Its future rows are the live rows that end after the as-of date;
-- service periods are half-open [start, end).
-- * meets_target_horizon: the furthest end of its future rows reaches as_of + horizon_days;
-- * needs_replenishment: it has no future row, or the furthest end is no later than
--   as_of + replenish_days.
WITH live AS (
    SELECT schedule_key, service_period_end
    FROM recurring_service_periods
    WHERE tenant = CAST(:tenant AS uuid)
      AND lifecycle_state NOT IN ('superseded', 'archived')
),
per_schedule AS (
    SELECT
        schedule_key,
        count(*) AS live_periods,
        count(*) FILTER (WHERE service_period_end > CAST(:as_of AS date)) AS future_periods,
        max(service_period_end) FILTER (WHERE service_period_end > CAST(:as_of AS date))
            AS furthest_end
    FROM live
    GROUP BY schedule_key
)
SELECT
    schedule_key,
    live_periods,
    future_periods,
    furthest_end,
    CAST(:as_of AS date) + CAST(:horizon_days AS integer) AS target_horizon_end,
    CAST(:as_of AS date) + CAST(:replenish_days AS integer) AS replenish_before,
    COALESCE(furthest_end >= CAST(:as_of AS date) + CAST(:horizon_days AS integer), false)
        AS meets_target_horizon,
    COALESCE(furthest_end <= CAST(:as_of AS date) + CAST(:replenish_days AS integer), true)
        AS needs_replenishment
FROM per_schedule
ORDER BY schedule_key
