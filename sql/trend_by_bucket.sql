-- Open receivables by age bucket per day and currency, with the KPIs, between two dates.
-- Parameters: from_date, to_date. Amounts are minor units (cents); never add two currencies.
-- days_over_90_cents = days_91_120_cents + days_over_120_cents (the two are null on rows built
-- before the split; rebuild the trend to fill them). DSO, CEI and the share over 90 are on net
-- receivables (net_balance_cents: open items less unapplied credit); the *_gross_* columns are
-- the same on open items alone.
SELECT as_of,
       currency,
       current_cents,
       days_1_30_cents,
       days_31_60_cents,
       days_61_90_cents,
       days_91_120_cents,
       days_over_120_cents,
       days_over_90_cents,
       total_open_cents,
       unapplied_credit_cents,
       net_balance_cents,
       dso_days,
       best_possible_dso_days,
       cei_pct,
       over_90_pct,
       dso_gross_days,
       cei_gross_pct,
       over_90_gross_pct
FROM ar_aging_summary
WHERE as_of BETWEEN :from_date AND :to_date
ORDER BY currency, as_of;
