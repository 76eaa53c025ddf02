-- Overdue receivables per customer and currency, as of the latest ar_aging run.
-- The original workflow's query, generalised: by customer_id (not name) and never adding two
-- currencies. The threshold_days parameter is bound by the caller (1 = everything overdue).
-- The last two columns split what is more than 90 days overdue (v_ar_aging's buckets 91_120
-- and over_120).
SELECT customer_id,
       customer_name,
       currency,
       SUM(open_cents)   AS total_open_cents,
       MAX(days_overdue) AS max_days_overdue,
       COUNT(*)          AS open_items,
       SUM(CASE WHEN bucket = '91_120' THEN open_cents ELSE 0 END)   AS days_91_120_cents,
       SUM(CASE WHEN bucket = 'over_120' THEN open_cents ELSE 0 END) AS days_over_120_cents
FROM v_ar_aging
WHERE days_overdue >= :threshold_days
GROUP BY customer_id, customer_name, currency
ORDER BY total_open_cents DESC, customer_id;
