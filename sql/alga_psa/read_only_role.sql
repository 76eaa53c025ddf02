-- The database role the Alga PSA source needs: SELECT on exactly the columns it reads, and
-- read-only sessions. Run it as an owner of the Alga PSA database, with your own password;
-- then AR_ALGA_DATABASE_URL=postgresql+psycopg://ar_pipeline_reader:<password>@host/<db>.
-- Column grants keep everything else (users' password hashes, invoice notes, ...) out of
-- reach. CONNECT on the database is granted to PUBLIC by default; if you revoked it, also
-- GRANT CONNECT ON DATABASE <db> TO ar_pipeline_reader.
CREATE ROLE ar_pipeline_reader LOGIN PASSWORD 'change-me';
ALTER ROLE ar_pipeline_reader SET default_transaction_read_only = on;
GRANT USAGE ON SCHEMA public TO ar_pipeline_reader;
GRANT SELECT (tenant, client_id, client_name, billing_email, billing_contact_id,
              account_manager_id)
    ON clients TO ar_pipeline_reader;
GRANT SELECT (tenant, contact_name_id, client_id, email, is_inactive)
    ON contacts TO ar_pipeline_reader;
GRANT SELECT (tenant, location_id, client_id, email, is_billing_address, is_default, is_active,
              created_at)
    ON client_locations TO ar_pipeline_reader;
GRANT SELECT (tenant, user_id, email) ON users TO ar_pipeline_reader;
GRANT SELECT (tenant, invoice_id, client_id, invoice_number, invoice_date, due_date,
              total_amount, credit_applied, currency_code, status, invoice_type, finalized_at,
              is_prepayment)
    ON invoices TO ar_pipeline_reader;
GRANT SELECT (tenant, payment_id, invoice_id, amount, payment_date, created_at, status)
    ON invoice_payments TO ar_pipeline_reader;
GRANT SELECT (tenant, credit_id, client_id, transaction_id, amount, remaining_amount,
              created_at, updated_at, expiration_date, is_expired, currency_code)
    ON credit_tracking TO ar_pipeline_reader;
GRANT SELECT (tenant, transaction_id, type, amount, created_at, related_transaction_id)
    ON transactions TO ar_pipeline_reader;
GRANT SELECT (tenant, allocation_id, invoice_id, amount, created_at)
    ON credit_allocations TO ar_pipeline_reader;
GRANT SELECT (tenant, record_id, schedule_key, period_key, revision, obligation_id,
              obligation_type, charge_family, cadence_owner, due_position, lifecycle_state,
              service_period_start, service_period_end, invoice_window_start,
              invoice_window_end, activity_window_start, activity_window_end, timing_metadata,
              provenance_kind, source_rule_version, reason_code, source_run_key,
              supersedes_record_id, created_at, updated_at, invoice_id, invoice_charge_id,
              invoice_charge_detail_id, invoice_linked_at)
    ON recurring_service_periods TO ar_pipeline_reader;
GRANT SELECT (tenant, contract_line_id, contract_id, contract_line_name, contract_line_type,
              billing_frequency, billing_timing, cadence_owner, custom_rate, is_active)
    ON contract_lines TO ar_pipeline_reader;
GRANT SELECT (tenant, contract_id, currency_code) ON contracts TO ar_pipeline_reader;
GRANT SELECT (tenant, contract_id, effective_date, end_date, custom_rate)
    ON contract_pricing_schedules TO ar_pipeline_reader;
GRANT SELECT (tenant, client_contract_id, client_id, contract_id, template_contract_id,
              start_date, end_date, is_active)
    ON client_contracts TO ar_pipeline_reader;
