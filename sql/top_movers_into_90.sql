-- Customers whose balance over 90 days overdue grew most between two daily aging runs, with
-- how much of it is now over 120 days.
-- Parameters: from_date, to_date (both dates must have ar_aging rows).
SELECT later.customer_id,
       later.customer_name,
       later.currency,
       COALESCE(earlier.days_over_90_cents, 0) AS over_90_before_cents,
       later.days_over_90_cents AS over_90_now_cents,
       later.days_91_120_cents AS days_91_120_now_cents,
       later.days_over_120_cents AS over_120_now_cents,
       later.days_over_90_cents - COALESCE(earlier.days_over_90_cents, 0) AS moved_in_cents
FROM ar_aging AS later
LEFT JOIN ar_aging AS earlier
       ON earlier.customer_id = later.customer_id
      AND earlier.currency = later.currency
      AND earlier.as_of = :from_date
WHERE later.as_of = :to_date
  AND later.days_over_90_cents > COALESCE(earlier.days_over_90_cents, 0)
ORDER BY moved_in_cents DESC, later.customer_id
LIMIT 20;
