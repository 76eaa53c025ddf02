-- The Alga PSA tables the source reads, with the column types, NOT NULL constraints, defaults,
-- keys and CHECK constraints that Alga's own migrations (server/migrations in
-- Nine-Minds/alga-psa) give them. Most columns the source never reads are left out, but every
-- NOT NULL column without a default is kept (Alga's code always writes them, so a fixture row
-- must too), and so are the CHECKs on the columns kept.
-- Written by hand for the tests and the benchmark; see README "Using with Alga PSA".
-- Foreign keys to tables outside this set (tenants, billing profiles, templates, projects) are
-- left out. gen_random_uuid() is built into PostgreSQL 13 and later.

CREATE TABLE users (
    tenant uuid NOT NULL,
    user_id uuid NOT NULL DEFAULT gen_random_uuid(),
    username text NOT NULL,
    hashed_password text NOT NULL,
    first_name text,
    last_name text,
    email text NOT NULL,
    is_inactive boolean DEFAULT false,
    user_type text NOT NULL DEFAULT 'internal',
    created_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant, user_id, email),
    UNIQUE (tenant, user_id),
    CONSTRAINT users_user_type_check CHECK (user_type IN ('internal', 'client'))
);

CREATE TABLE clients (
    tenant uuid NOT NULL,
    client_id uuid NOT NULL DEFAULT gen_random_uuid(),
    client_name text NOT NULL,
    billing_email varchar(255),
    billing_contact_id uuid,
    account_manager_id uuid,
    is_inactive boolean DEFAULT false,
    client_type text NOT NULL DEFAULT 'company',
    is_tax_exempt boolean NOT NULL DEFAULT false,
    billing_cycle text NOT NULL DEFAULT 'monthly',
    default_currency_code varchar(3) NOT NULL DEFAULT 'USD',
    lifecycle_status text NOT NULL DEFAULT 'active',
    created_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant, client_id),
    UNIQUE (client_id),
    UNIQUE (tenant, client_name),
    CONSTRAINT clients_billing_cycle_check CHECK (billing_cycle IN (
        'weekly', 'bi-weekly', 'monthly', 'quarterly', 'semi-annually', 'annually')),
    CONSTRAINT clients_client_type_check CHECK (client_type IN ('company', 'individual')),
    CONSTRAINT clients_lifecycle_status_check CHECK (
        lifecycle_status IN ('prospect', 'active', 'former'))
);

CREATE TABLE contacts (
    tenant uuid NOT NULL,
    contact_name_id uuid NOT NULL DEFAULT gen_random_uuid(),
    full_name text,
    email text,
    client_id uuid REFERENCES clients (client_id) ON DELETE CASCADE,
    is_inactive boolean DEFAULT false,
    is_client_admin boolean NOT NULL DEFAULT false,
    created_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant, contact_name_id),
    UNIQUE (tenant, email)
);

CREATE TABLE client_locations (
    location_id uuid NOT NULL,
    tenant uuid NOT NULL,
    client_id uuid NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    location_name varchar(255),
    address_line1 varchar(255) NOT NULL,
    city varchar(255) NOT NULL,
    country_code varchar(255) NOT NULL,
    country_name varchar(255) NOT NULL,
    is_billing_address boolean DEFAULT false,
    is_shipping_address boolean DEFAULT false,
    is_default boolean DEFAULT false,
    email varchar(255),
    is_active boolean DEFAULT true,
    created_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (location_id, tenant)
);
CREATE UNIQUE INDEX ux_client_locations_default_per_client
    ON client_locations (tenant, client_id) WHERE is_default = true;

CREATE TABLE invoices (
    tenant uuid NOT NULL,
    invoice_id uuid NOT NULL DEFAULT gen_random_uuid(),
    client_id uuid NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    invoice_number text NOT NULL,
    invoice_date timestamptz NOT NULL,
    due_date timestamptz NOT NULL,
    total_amount bigint NOT NULL,
    subtotal integer NOT NULL DEFAULT 0,
    tax integer NOT NULL DEFAULT 0,
    status text NOT NULL,
    finalized_at timestamptz,
    credit_applied integer,
    is_manual boolean NOT NULL DEFAULT false,
    is_prepayment boolean NOT NULL DEFAULT false,
    currency_code varchar(3) NOT NULL DEFAULT 'USD',
    invoice_type varchar(20) NOT NULL DEFAULT 'standard',
    tax_source varchar(20) DEFAULT 'internal',
    credit_expiration_date timestamptz,
    created_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant, invoice_id),
    UNIQUE (invoice_id),
    UNIQUE (invoice_number, tenant),
    CONSTRAINT invoices_tax_source_check CHECK (
        tax_source IN ('internal', 'external', 'pending_external'))
);

CREATE TABLE invoice_payments (
    payment_id uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant uuid NOT NULL,
    invoice_id uuid NOT NULL,
    amount bigint NOT NULL,
    payment_method varchar(100),
    payment_date timestamptz DEFAULT CURRENT_TIMESTAMP,
    reference_number varchar(255),
    notes text,
    status varchar(50) DEFAULT 'completed',
    metadata jsonb DEFAULT '{}',
    created_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant, payment_id),
    FOREIGN KEY (tenant, invoice_id) REFERENCES invoices (tenant, invoice_id) ON DELETE CASCADE
);

CREATE TABLE transactions (
    transaction_id uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant uuid NOT NULL,
    invoice_id uuid,
    client_id uuid REFERENCES clients (client_id) ON DELETE CASCADE,
    type text NOT NULL,
    amount bigint NOT NULL DEFAULT 0,
    status varchar(255) DEFAULT 'completed',
    description varchar(255),
    metadata jsonb,
    expiration_date timestamptz,
    currency_code varchar(3) NOT NULL DEFAULT 'USD',
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    balance_after numeric(15, 2),
    -- e.g. a credit_expiration row names the credit's issuing transaction
    related_transaction_id uuid,
    PRIMARY KEY (transaction_id, tenant),
    UNIQUE (transaction_id),
    UNIQUE (tenant, transaction_id),
    FOREIGN KEY (invoice_id, tenant) REFERENCES invoices (invoice_id, tenant),
    FOREIGN KEY (related_transaction_id) REFERENCES transactions (transaction_id),
    CONSTRAINT transactions_type_check CHECK (type IN (
        'credit_application', 'credit_issuance', 'credit_adjustment', 'credit_expiration',
        'credit_transfer', 'credit_issuance_from_negative_invoice', 'payment',
        'partial_payment', 'prepayment', 'payment_reversal', 'payment_failed',
        'invoice_generated', 'invoice_adjustment', 'invoice_cancelled', 'late_fee',
        'early_payment_discount', 'refund_full', 'refund_partial', 'refund_reversal',
        'service_credit', 'price_adjustment', 'service_adjustment', 'billing_cycle_adjustment',
        'currency_adjustment', 'tax_adjustment'))
);

CREATE TABLE credit_tracking (
    credit_id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    tenant uuid NOT NULL,
    client_id uuid REFERENCES clients (client_id) ON DELETE CASCADE,
    transaction_id uuid NOT NULL,
    amount numeric(10, 2) NOT NULL,
    remaining_amount numeric(10, 2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expiration_date timestamptz,
    is_expired boolean DEFAULT false,
    updated_at timestamptz,
    currency_code varchar(3) NOT NULL DEFAULT 'USD',
    FOREIGN KEY (tenant, transaction_id) REFERENCES transactions (tenant, transaction_id)
);

CREATE TABLE credit_allocations (
    allocation_id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    tenant uuid NOT NULL,
    transaction_id uuid NOT NULL REFERENCES transactions (transaction_id),
    invoice_id uuid NOT NULL REFERENCES invoices (invoice_id),
    amount numeric(10, 2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (transaction_id, tenant) REFERENCES transactions (transaction_id, tenant)
);

CREATE TABLE contracts (
    tenant uuid NOT NULL,
    contract_id uuid NOT NULL DEFAULT gen_random_uuid(),
    contract_name varchar(255) NOT NULL,
    billing_frequency text NOT NULL DEFAULT 'monthly',
    is_active boolean DEFAULT true,
    status text NOT NULL DEFAULT 'draft',
    is_template boolean NOT NULL DEFAULT true,
    currency_code varchar(3) NOT NULL DEFAULT 'USD',
    owner_client_id uuid,
    is_system_managed_default boolean NOT NULL DEFAULT false,
    created_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant, contract_id),
    FOREIGN KEY (tenant, owner_client_id) REFERENCES clients (tenant, client_id)
);

CREATE TABLE contract_lines (
    tenant uuid NOT NULL,
    contract_line_id uuid NOT NULL DEFAULT gen_random_uuid(),
    contract_line_name text NOT NULL,
    contract_id uuid,
    contract_line_type text,
    billing_frequency text NOT NULL DEFAULT 'monthly',
    billing_timing varchar(16) NOT NULL DEFAULT 'arrears',
    cadence_owner varchar(16) NOT NULL DEFAULT 'client',
    custom_rate numeric(10, 2),
    is_active boolean DEFAULT true,
    is_template boolean NOT NULL DEFAULT true,
    display_order integer NOT NULL DEFAULT 0,
    enable_proration boolean NOT NULL DEFAULT false,
    billing_cycle_alignment varchar(16) NOT NULL DEFAULT 'start',
    created_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant, contract_line_id),
    FOREIGN KEY (tenant, contract_id) REFERENCES contracts (tenant, contract_id),
    CONSTRAINT contract_lines_cadence_owner_check CHECK (cadence_owner IN ('client', 'contract'))
);

CREATE TABLE client_contracts (
    tenant uuid NOT NULL,
    client_contract_id uuid NOT NULL DEFAULT gen_random_uuid(),
    client_id uuid NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    contract_id uuid NOT NULL,
    template_contract_id uuid,
    start_date date NOT NULL,
    end_date date,
    is_active boolean DEFAULT true,
    status text NOT NULL DEFAULT 'pending',
    renewal_mode text NOT NULL DEFAULT 'manual',
    notice_period_days integer NOT NULL DEFAULT 30,
    use_tenant_renewal_defaults boolean NOT NULL DEFAULT true,
    created_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant, client_contract_id),
    FOREIGN KEY (tenant, contract_id) REFERENCES contracts (tenant, contract_id) ON DELETE CASCADE,
    CONSTRAINT client_contracts_notice_period_days_check CHECK (notice_period_days >= 0),
    CONSTRAINT client_contracts_renewal_mode_check CHECK (
        renewal_mode IN ('none', 'manual', 'auto')),
    CONSTRAINT client_contracts_renewal_status_check CHECK (status IN (
        'pending', 'renewing', 'non_renewing', 'snoozed', 'completed'))
);

CREATE TABLE contract_pricing_schedules (
    schedule_id uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant uuid NOT NULL,
    contract_id uuid NOT NULL,
    effective_date date NOT NULL,
    end_date date,
    duration_value integer,
    duration_unit text,
    custom_rate integer,
    created_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (tenant, schedule_id),
    FOREIGN KEY (tenant, contract_id) REFERENCES contracts (tenant, contract_id) ON DELETE CASCADE,
    CONSTRAINT chk_contract_pricing_schedules_date_range CHECK (
        end_date IS NULL OR end_date > effective_date),
    CONSTRAINT chk_contract_pricing_schedules_positive_rate CHECK (
        custom_rate IS NULL OR custom_rate >= 0),
    CONSTRAINT contract_pricing_schedules_duration_unit_check CHECK (
        duration_unit IN ('days', 'weeks', 'months', 'years'))
);

CREATE TABLE recurring_service_periods (
    record_id uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant uuid NOT NULL,
    schedule_key varchar(255) NOT NULL,
    period_key varchar(255) NOT NULL,
    revision integer NOT NULL DEFAULT 1,
    obligation_id uuid NOT NULL,
    obligation_type varchar(40) NOT NULL,
    charge_family varchar(20) NOT NULL,
    cadence_owner varchar(16) NOT NULL,
    due_position varchar(16) NOT NULL,
    lifecycle_state varchar(20) NOT NULL DEFAULT 'generated',
    service_period_start date NOT NULL,
    service_period_end date NOT NULL,
    invoice_window_start date NOT NULL,
    invoice_window_end date NOT NULL,
    activity_window_start date,
    activity_window_end date,
    timing_metadata jsonb,
    provenance_kind varchar(20) NOT NULL,
    source_rule_version varchar(255) NOT NULL,
    reason_code varchar(100),
    source_run_key varchar(255),
    supersedes_record_id uuid,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    invoice_id uuid,
    invoice_charge_id uuid,
    invoice_charge_detail_id uuid,
    invoice_linked_at timestamptz,
    PRIMARY KEY (tenant, record_id),
    UNIQUE (tenant, schedule_key, period_key, revision),
    UNIQUE (tenant, invoice_charge_detail_id),
    CONSTRAINT recurring_service_periods_activity_window_check CHECK (
        (activity_window_start IS NULL AND activity_window_end IS NULL)
        OR (activity_window_start IS NOT NULL AND activity_window_end IS NOT NULL
            AND activity_window_start < activity_window_end
            AND activity_window_start >= service_period_start
            AND activity_window_end <= service_period_end)),
    CONSTRAINT recurring_service_periods_cadence_owner_check CHECK (
        cadence_owner IN ('client', 'contract')),
    CONSTRAINT recurring_service_periods_charge_family_check CHECK (
        charge_family IN ('fixed', 'product', 'license', 'bucket', 'hourly', 'usage')),
    CONSTRAINT recurring_service_periods_due_position_check CHECK (
        due_position IN ('advance', 'arrears')),
    CONSTRAINT recurring_service_periods_invoice_linkage_check CHECK (
        (invoice_id IS NULL AND invoice_charge_id IS NULL AND invoice_charge_detail_id IS NULL
         AND invoice_linked_at IS NULL)
        OR (invoice_id IS NOT NULL AND invoice_charge_id IS NOT NULL
            AND invoice_charge_detail_id IS NOT NULL AND invoice_linked_at IS NOT NULL)),
    CONSTRAINT recurring_service_periods_invoice_linkage_state_check CHECK (
        invoice_charge_detail_id IS NULL OR lifecycle_state = 'billed'),
    CONSTRAINT recurring_service_periods_invoice_window_range_check CHECK (
        invoice_window_start < invoice_window_end),
    CONSTRAINT recurring_service_periods_lifecycle_state_check CHECK (lifecycle_state IN (
        'generated', 'edited', 'skipped', 'locked', 'billed', 'superseded', 'archived')),
    CONSTRAINT recurring_service_periods_obligation_type_check CHECK (obligation_type IN (
        'contract_line', 'client_contract_line', 'template_line', 'preset_line')),
    CONSTRAINT recurring_service_periods_provenance_kind_check CHECK (provenance_kind IN (
        'generated', 'user_edited', 'regenerated', 'repair')),
    CONSTRAINT recurring_service_periods_revision_check CHECK (revision >= 1),
    CONSTRAINT recurring_service_periods_service_period_range_check CHECK (
        service_period_start < service_period_end),
    CONSTRAINT recurring_service_periods_supersedes_record_check CHECK (
        supersedes_record_id IS NULL OR supersedes_record_id <> record_id)
);
