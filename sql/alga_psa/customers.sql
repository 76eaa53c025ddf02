-- Alga PSA clients as ledger customers (docs/design.md, The ledger contract), one tenant.
-- Parameters: :tenant (uuid text), :only_clients (uuid text array, or NULL for all clients).
-- The billing e-mail is the address Alga itself would send the client's invoices to, in
-- Alga's order (recipients.sql, put in front as the CTE recipients); recipient_source says
-- which of the four it is (billing_contact, billing_email, billing_location,
-- default_location), NULL when there is none. The account manager's e-mail is the sales
-- rep's. Inactive clients stay in: a client that stopped buying but still owes money is
-- exactly who collections chases. Pause, hold and created_at belong to the pipeline.
SELECT
    c.client_id::text AS customer_id,
    c.client_name AS customer_name,
    r.email AS billing_email,
    NULLIF(btrim(u.email), '') AS sales_rep_email,
    r.source AS recipient_source
FROM clients AS c
LEFT JOIN recipients AS r
    ON r.client_id = c.client_id::text
LEFT JOIN users AS u
    ON u.tenant = c.tenant AND u.user_id = c.account_manager_id
WHERE c.tenant = CAST(:tenant AS uuid)
  AND (CAST(:only_clients AS uuid[]) IS NULL OR c.client_id = ANY(CAST(:only_clients AS uuid[])))
ORDER BY c.client_id
