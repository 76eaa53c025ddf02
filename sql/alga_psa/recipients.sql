-- The address Alga PSA sends a client's invoices to, and where it came from, one tenant.
-- Parameters: :tenant (uuid text), :only_clients (uuid text array, or NULL for all clients).
-- Alga's order (invoiceBillingRecipientService.ts), the first valid e-mail wins:
--   1. billing_contact:  the active contact clients.billing_contact_id names, of this client;
--   2. billing_email:    clients.billing_email;
--   3. billing_location: an active billing location (is_billing_address), oldest first;
--   4. default_location: an active default location (is_default), oldest first.
-- A blank or malformed address never blocks the next candidate; "valid" is the shape Alga's
-- isValidEmail (zod's e-mail rule) accepts, after trimming. A client with none of them has no
-- row here: nobody to write to.
SELECT DISTINCT ON (client_id)
    client_id::text AS client_id,
    email,
    source
FROM (
    SELECT c.client_id, 1 AS rank, btrim(k.email) AS email, 'billing_contact' AS source,
           CAST(NULL AS timestamptz) AS created_at, CAST(NULL AS uuid) AS location_id
    FROM clients AS c
    JOIN contacts AS k
        ON k.tenant = c.tenant AND k.contact_name_id = c.billing_contact_id
       AND k.client_id = c.client_id AND (k.is_inactive = false OR k.is_inactive IS NULL)
    WHERE c.tenant = CAST(:tenant AS uuid)
    UNION ALL
    SELECT c.client_id, 2, btrim(c.billing_email), 'billing_email', NULL, NULL
    FROM clients AS c
    WHERE c.tenant = CAST(:tenant AS uuid)
    UNION ALL
    SELECT l.client_id, 3, btrim(l.email), 'billing_location', l.created_at, l.location_id
    FROM client_locations AS l
    WHERE l.tenant = CAST(:tenant AS uuid) AND l.is_billing_address = true AND l.is_active = true
    UNION ALL
    SELECT l.client_id, 4, btrim(l.email), 'default_location', l.created_at, l.location_id
    FROM client_locations AS l
    WHERE l.tenant = CAST(:tenant AS uuid) AND l.is_default = true AND l.is_active = true
) AS candidate
WHERE email ~* '^(?!\.)(?!.*\.\.)[a-z0-9_''+.-]*[a-z0-9_+-]@([a-z0-9][a-z0-9-]*\.)+[a-z]{2,}$'
  AND (CAST(:only_clients AS uuid[]) IS NULL OR client_id = ANY(CAST(:only_clients AS uuid[])))
ORDER BY client_id, rank, created_at, location_id
