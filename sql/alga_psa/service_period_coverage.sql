-- Coverage of each active recurring schedule of one tenant as of a date.
-- Parameters: :tenant (uuid text), :as_of (date), :horizon_days, :replenish_days.
-- Reads live_service_periods (live_service_periods.sql, put in front as a CTE). A schedule is
-- active when it has a live row. Its future rows are the live rows that end after the as-of
-- date; service periods are half-open [start, end).
-- * meets_target_horizon: the furthest end of its future rows reaches as_of + horizon_days;
-- * needs_replenishment: it has no future row, or the furthest end is no later than
--   as_of + replenish_days.
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
FROM (
    SELECT
        schedule_key,
        count(*) AS live_periods,
        count(*) FILTER (WHERE service_period_end > CAST(:as_of AS date)) AS future_periods,
        max(service_period_end) FILTER (WHERE service_period_end > CAST(:as_of AS date))
            AS furthest_end
    FROM live_service_periods
    GROUP BY schedule_key
) AS per_schedule
ORDER BY schedule_key
