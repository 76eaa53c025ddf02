-- Customers whose target dunning tier went up in the last week: their tier on as_of compared
-- with the latest tier assignment on or before week_ago (no assignment then = tier 0).
-- Parameters: as_of, week_ago (the caller passes as_of minus 7 days).
SELECT now_.customer_id,
       c.customer_name,
       COALESCE(before_.target_tier, 0) AS tier_before,
       now_.target_tier AS tier_now,
       now_.proposed_tier,
       now_.skip_reason
FROM tier_assignments AS now_
JOIN customers AS c ON c.customer_id = now_.customer_id
LEFT JOIN tier_assignments AS before_
       ON before_.customer_id = now_.customer_id
      AND before_.as_of = (SELECT MAX(as_of) FROM tier_assignments WHERE as_of <= :week_ago)
WHERE now_.as_of = :as_of
  AND COALESCE(now_.target_tier, 0) > COALESCE(before_.target_tier, 0)
ORDER BY now_.target_tier DESC, now_.customer_id;
