-- Open receivables by age bucket per day and currency, with DSO and CEI, between two dates.
-- Parameters: from_date, to_date. Amounts are minor units (cents); never add two currencies.
SELECT as_of,
       currency,
       current_cents,
       days_1_30_cents,
       days_31_60_cents,
       days_61_90_cents,
       days_over_90_cents,
       total_open_cents,
       dso_days,
       cei_pct
FROM ar_aging_summary
WHERE as_of BETWEEN :from_date AND :to_date
ORDER BY currency, as_of;
