-- What a repair plan needs to know of the obligations behind some schedule keys (those of
-- obligations_without_service_periods.sql), for the runbook's backfill helper.
-- Parameters: :tenant (uuid text), :schedule_keys (text array).
SELECT DISTINCT ON (schedule_key) *
FROM (
    SELECT
        'schedule:' || l.tenant::text || ':contract_line:' || l.contract_line_id::text || ':'
            || l.cadence_owner || ':' || l.billing_timing AS schedule_key,
        l.contract_line_id::text AS obligation_id,
        l.contract_line_name,
        l.contract_line_type,
        l.billing_frequency,
        l.cadence_owner,
        l.billing_timing,
        cc.client_id::text AS client_id,
        cc.client_contract_id::text AS client_contract_id,
        k.contract_id::text AS contract_id,
        cc.start_date,
        cc.end_date
    FROM client_contracts AS cc
    JOIN contracts AS k
        ON k.tenant = cc.tenant
       AND k.contract_id = COALESCE(cc.template_contract_id, cc.contract_id)
    JOIN contract_lines AS l
        ON l.tenant = k.tenant AND l.contract_id = k.contract_id
    WHERE cc.tenant = CAST(:tenant AS uuid) AND cc.is_active = true
) AS obligation
WHERE schedule_key = ANY(CAST(:schedule_keys AS text[]))
ORDER BY schedule_key, start_date
