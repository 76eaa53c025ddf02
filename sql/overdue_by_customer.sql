-- Overdue receivables per customer and currency, as of the latest ar_aging run.
-- The original workflow's query, generalised: by customer_id (not name) and never adding two
-- currencies. The threshold_days parameter is bound by the caller (1 = everything overdue).
SELECT customer_id,
       customer_name,
       currency,
       SUM(open_cents)   AS total_open_cents,
       MAX(days_overdue) AS max_days_overdue,
       COUNT(*)          AS open_items
FROM v_ar_aging
WHERE days_overdue >= :threshold_days
GROUP BY customer_id, customer_name, currency
ORDER BY total_open_cents DESC, customer_id;
