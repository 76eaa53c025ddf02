-- Today's calls: the worklist of one day (the parameter as_of), each currency's list in rank order, with
-- the expected recovery and the reason in words. The view v_todays_calls holds the latest day.
SELECT currency,
       rank,
       customer_id,
       customer_name,
       expected_recovery_cents,
       dunnable_cents,
       overdue_cents,
       payer_factor,
       reason
FROM collection_worklist
WHERE as_of = :as_of
ORDER BY currency, rank, customer_id
