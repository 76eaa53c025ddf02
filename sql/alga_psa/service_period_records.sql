-- The live service periods (not superseded, not archived) of some schedules of one tenant,
-- every column of Alga's recurring_service_periods, for repair plans that carry them in the
-- shape of Alga's IRecurringServicePeriodRecord (ar_pipeline.sources.service_periods).
-- Parameters: :tenant (uuid text), :schedule_keys (text array).
SELECT
    p.record_id::text AS record_id, p.tenant::text AS tenant, p.schedule_key, p.period_key,
    p.revision, p.obligation_id::text AS obligation_id, p.obligation_type, p.charge_family,
    p.cadence_owner, p.due_position, p.lifecycle_state, p.service_period_start,
    p.service_period_end, p.invoice_window_start, p.invoice_window_end,
    p.activity_window_start, p.activity_window_end, p.timing_metadata, p.provenance_kind,
    p.source_rule_version, p.reason_code, p.source_run_key,
    p.supersedes_record_id::text AS supersedes_record_id, p.created_at, p.updated_at,
    p.invoice_id::text AS invoice_id, p.invoice_charge_id::text AS invoice_charge_id,
    p.invoice_charge_detail_id::text AS invoice_charge_detail_id, p.invoice_linked_at,
    i.invoice_number, i.status AS invoice_status
FROM recurring_service_periods AS p
LEFT JOIN invoices AS i
    ON i.tenant = p.tenant AND i.invoice_id = p.invoice_id
WHERE p.tenant = CAST(:tenant AS uuid)
  AND p.schedule_key = ANY(CAST(:schedule_keys AS text[]))
  AND p.lifecycle_state NOT IN ('superseded', 'archived')
ORDER BY p.schedule_key, p.service_period_start, p.service_period_end, p.record_id
