-- Alga PSA clients as ledger customers (DESIGN.md section 3), one tenant.
-- Parameters: :tenant (uuid text), :only_clients (uuid text array, or NULL for all clients).
-- The account manager's e-mail is the sales rep's. Inactive clients stay in: a client that
-- stopped buying but still owes money is exactly who collections chases.
-- Pause, hold and created_at belong to the pipeline, not to Alga, and are not read here.
SELECT
    c.client_id::text AS customer_id,
    c.client_name AS customer_name,
    NULLIF(btrim(c.billing_email), '') AS billing_email,
    NULLIF(btrim(u.email), '') AS sales_rep_email
FROM clients AS c
LEFT JOIN users AS u
    ON u.tenant = c.tenant AND u.user_id = c.account_manager_id
WHERE c.tenant = CAST(:tenant AS uuid)
  AND (CAST(:only_clients AS uuid[]) IS NULL OR c.client_id = ANY(CAST(:only_clients AS uuid[])))
ORDER BY c.client_id
